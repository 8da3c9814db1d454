"""A cluster's TLS client certificate in the kernel: written 0600 into a 0700 directory of the user's."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

FILES = (("ca", "ca.pem"), ("cert", "client.pem"), ("key", "client-key.pem"))


def client_security(cluster_id: str, data: dict[str, Any], runtime_dir: str):
    """A ``distributed.Security`` (TLS required) from af-lab's ``/clusters/<id>/client`` answer.

    The files go to ``<runtime_dir>/af-lab-clusters/<id>/`` (the Jupyter runtime dir is the user's own).
    """
    from distributed.security import Security  # imported only when a client is asked for

    directory = Path(runtime_dir) / "af-lab-clusters" / cluster_id
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for d in (directory.parent, directory):
        os.chmod(d, 0o700)
    paths = {}
    for key, name in FILES:
        path = directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(data[key])
        os.chmod(path, 0o600)
        paths[key] = str(path)
    return Security(tls_ca_file=paths["ca"], tls_client_cert=paths["cert"], tls_client_key=paths["key"],
                    require_encryption=True)
