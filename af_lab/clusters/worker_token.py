"""The worker side of token delivery: a Dask worker plugin that writes the bearer token file.

This module is shipped to workers *by value* (cloudpickle), so worker images
need Dask but not af-lab. Keep it to the standard library and ``distributed``.

A job starts with the token HTCondor transferred (``$BEARER_TOKEN_FILE`` points
at it, in the job's scratch directory). Every time af-lab registers this plugin
again under the same name, the scheduler hands it to every worker (and to
workers that join later), and ``setup`` replaces the file atomically: that is
the refresh. The token never appears in ``repr`` (Dask logs plugins by repr).
"""

from __future__ import annotations

import os
import tempfile

from distributed.diagnostics.plugin import WorkerPlugin

PLUGIN_NAME = "af-lab-bearer-token"
ENV_VAR = "BEARER_TOKEN_FILE"  # WLCG bearer token discovery
FILE_NAME = "bearer_token"


def write_private(path: str, text: str) -> None:
    """Replace ``path`` atomically with a 0600 file holding ``text``."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".bearer_token.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text + "\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class BearerTokenPlugin(WorkerPlugin):
    idempotent = False  # registering again must replace the token on every worker

    def __init__(self, token: str, expires_at: float | None = None):
        self._token = token
        self.expires_at = expires_at

    def __repr__(self) -> str:
        return f"<BearerTokenPlugin expires_at={self.expires_at}>"

    __str__ = __repr__

    def setup(self, worker) -> None:
        path = os.environ.get(ENV_VAR) or os.path.join(worker.local_directory, FILE_NAME)
        write_private(path, self._token)
        # Local workers have no job prologue: point their tasks at the file too.
        os.environ[ENV_VAR] = path
