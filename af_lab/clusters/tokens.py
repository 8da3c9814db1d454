"""The data-access token on a cluster's workers: shipped, refreshed, and reported in the cluster model.

Only the user's data-access bearer token (Rucio/XRootD, from the credential
service) ever reaches workers — never the hub JWT (it opens Vault), never the
Jupyter token. Without such a token a cluster still starts: its workers get no
token and the model says so (``token.state = "none"``).
"""

from __future__ import annotations

import hashlib
import logging
import time

import cloudpickle

from ..errors import AFLabError
from . import worker_token
from .managed import ManagedCluster


class TokenShipper:
    def __init__(self, credentials, refresh_margin: float, log: logging.Logger):
        self.credentials = credentials
        self.refresh_margin = refresh_margin
        self.log = log

    def ships(self, mc: ManagedCluster) -> bool:
        return self.credentials is not None and mc.profile.settings.get("ship_token", True)

    async def current(self) -> tuple[str, float | None] | None:
        """The data-access token, or None when there is none (the hub JWT does not count)."""
        try:
            return await self.credentials.bearer_token(hub_fallback=False)
        except AFLabError as exc:
            self._last_reason = exc.message
            return None

    async def prepare(self, mc: ManagedCluster) -> bool:
        """Write the token file batch jobs carry; False (and the model says why) when there is no token."""
        found = await self.current()
        if found is None:
            mc.token = {"state": "none", "expires_at": None, "refreshed_at": None,
                        "message": "The workers have no data-access token: "
                                   f"{getattr(self, '_last_reason', 'none is stored')}"}
            return False
        worker_token.write_private(str(mc.token_file), found[0])
        return True

    async def refresh(self, mc: ManagedCluster, force: bool = False) -> None:
        """Give the workers the credential service's current token whenever it changes."""
        found = await self.current()
        if found is None:
            if mc.token and mc.token.get("state") == "ok":
                self.log.warning("af-lab: cluster %s: the workers' token cannot be refreshed", mc.id)
                mc.token = {**mc.token, "state": "unavailable",
                            "message": "The workers' bearer token cannot be refreshed: "
                                       f"{getattr(self, '_last_reason', '')}"}
            elif not mc.token:
                await self.prepare(mc)
            return
        token, exp = found
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = time.time()
        if force or digest != mc.token_digest:
            worker_token.write_private(str(mc.token_file), token)  # for jobs that start later
            plugin = cloudpickle.dumps(worker_token.BearerTokenPlugin(token, exp))
            replies = await mc.cluster.scheduler_comm.register_worker_plugin(
                plugin=plugin, name=worker_token.PLUGIN_NAME, idempotent=False
            )
            failed = [w for w, r in (replies or {}).items() if r.get("status") != "OK"]
            if failed:
                self.log.warning("af-lab: cluster %s: %d worker(s) could not store the token", mc.id, len(failed))
            mc.token_digest = digest
            mc.token = {"state": "ok", "expires_at": exp, "refreshed_at": now, "message": ""}
            if not force:
                self.log.info("af-lab: cluster %s: refreshed the bearer token on %d worker(s)", mc.id,
                              len(replies or {}))
        elif exp and exp - now < self.refresh_margin:
            mc.token = {**mc.token, "state": "expiring",
                        "message": f"The workers' bearer token expires in {max(exp - now, 0):.0f} s and no "
                                   "fresher token is available yet."}
