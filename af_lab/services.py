"""The container of af-lab's services, one instance per server process."""

from __future__ import annotations

import asyncio
import logging

from .clusters.manager import ClusterService
from .config import AFLab
from .events.bus import EventBus
from .mounts.service import MountService
from .publish.service import PublishService
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
        self.credentials = CredentialService(config, log=self.log) if config.vault_address else None
        # Rucio before the services that use it (mounts, publish go through services.rucio).
        self.rucio_auth = RucioAuth(config, self.credentials, log=self.log)
        self.rucio = RucioService(config, self.rucio_auth, user=self.credentials.user if self.credentials else None,
                                  log=self.log)
        self.status = StatusService(config, credentials=self.credentials, rucio_auth=self.rucio_auth)
        self.clusters = ClusterService(config, log=self.log, credentials=self.credentials)
        self.mounts = MountService(self)
        self.publish = PublishService(self)

    async def start(self) -> None:
        """Resume interrupted mounts and restore persisted clusters without waiting for a
        request: orphaned jobs must be cleaned up even if nobody opens a panel. Every
        service also starts itself lazily on first use, so calling this is optional."""
        await asyncio.gather(self.mounts.ensure_started(), self.clusters.ready())

    async def close(self) -> None:
        await self.publish.close()
        await self.clusters.close()
        await self.mounts.close()
        await self.rucio.close()
        await self.rucio_auth.close()
        if self.credentials is not None:
            await self.credentials.close()
