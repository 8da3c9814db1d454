"""The container of af-lab's services, one instance per server process.

Every service is built here with exactly the objects it uses, in dependency order, so
this file is the map of who talks to whom. Every service has ``start()`` (work that
must not wait for a first request, e.g. resuming jobs) and ``close()``.
"""

from __future__ import annotations

import asyncio
import logging

from .clusters.manager import ClusterService
from .config import AFLab
from .events.bus import EventBus
from .mounts.service import MountService
from .publish.service import PublishService
from .rucio.gateway import RucioGateway
from .rucio.service import RucioService
from .status.service import StatusService
from .vault.credentials import CredentialService
from .vault.rucio_auth import RucioAuth


class Services:
    def __init__(self, config: AFLab, log: logging.Logger | None = None, root_dir: str = "."):
        self.config = config
        self.log = log or logging.getLogger("af_lab")
        self.root_dir = root_dir
        self.events = EventBus()
        # The only code that touches Vault or a secret.
        self.credentials = CredentialService(config, log=self.log) if config.vault_address else None
        # Rucio: tokens (from the credential service) -> the one gateway every Rucio call goes through.
        self.rucio_auth = RucioAuth(config, self.credentials, log=self.log)
        self.gateway = RucioGateway(config, self.rucio_auth, log=self.log)
        user = self.credentials.user if self.credentials else None
        self.rucio = RucioService(config, self.gateway, user=user, log=self.log)
        self.clusters = ClusterService(config, log=self.log, credentials=self.credentials)
        self.mounts = MountService(config, self.gateway, self.events, self.credentials, root_dir, log=self.log)
        # The cache's size comes from the mounts' own accounting, not a walk of its (big) views.
        self.status = StatusService(config, credentials=self.credentials, rucio_auth=self.rucio_auth,
                                    cache_bytes=self.mounts.cache.disk_bytes)
        self.publish = PublishService(config, self.gateway, self.events, self.credentials, self.mounts, root_dir,
                                      log=self.log)

    async def start(self) -> None:
        """Resume interrupted mounts and publish jobs, restore persisted clusters, without
        waiting for a request: orphaned jobs must be cleaned up even if nobody opens a panel."""
        await self.gateway.start()
        await self.rucio.start()
        await asyncio.gather(self.mounts.start(), self.publish.start(), self.clusters.ready())

    async def close(self) -> None:
        """In reverse order of construction: users of a service stop before it does."""
        await self.publish.close()
        await self.mounts.close()
        await self.clusters.close()
        await self.rucio.close()
        await self.gateway.close()
        await self.rucio_auth.close()
        if self.credentials is not None:
            await self.credentials.close()
