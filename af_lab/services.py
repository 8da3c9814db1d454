"""The container of af-lab's services, one instance per server process.

Every service is built here with exactly the objects it uses, in dependency order, so
this file is the map of who talks to whom. Every service has the same two-call
life: ``start()`` (work that must not wait for a first request, e.g. resuming jobs;
idempotent, so request paths that need it may await it too) and ``close()``.
"""

from __future__ import annotations

import asyncio
import logging

from .attachments.service import AttachmentService
from .clusters.manager import ClusterService
from .config import AFLab
from .events.bus import EventBus
from .mounts.service import MountService
from .publish.service import PublishService
from .rootfile.service import RootFileService
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
        self.clusters = ClusterService(config, self.events, log=self.log, credentials=self.credentials)
        self.mounts = MountService(config, self.gateway, self.events, self.credentials, root_dir, log=self.log)
        # The cache's size comes from the mounts' own accounting, not a walk of its (big) views.
        self.status = StatusService(config, credentials=self.credentials, rucio_auth=self.rucio_auth,
                                    cache_bytes=self.mounts.cache.disk_bytes,
                                    xcache_observed=self.mounts.note_xcache)  # stream mounts warn while it is down
        self.publish = PublishService(config, self.gateway, self.events, self.credentials, self.mounts, root_dir,
                                      log=self.log)
        # What became of the DIDs a notebook recorded: Rucio (gateway), the mounts, the kernels' reports.
        self.attachments = AttachmentService(self.gateway, self.mounts, self.publish.sessions, log=self.log)
        # Mounted files are links into the cache or to replicas on RSEs this host mounts.
        rse_roots = [path for inst in config.rucio_instances for path in (inst.get("rse_mounts") or {}).values()]
        self.rootfile = RootFileService(root_dir, [config.cache_dir, *rse_roots])

    async def start(self) -> None:
        """Resume interrupted mounts and publish jobs, restore persisted clusters, without
        waiting for a request: orphaned jobs must be cleaned up even if nobody opens a panel."""
        if self.credentials is not None:
            await self.credentials.start()
        await self.rucio_auth.start()
        await self.gateway.start()
        await self.rucio.start()
        await self.status.start()
        await asyncio.gather(self.mounts.start(), self.publish.start(), self.clusters.start())

    async def close(self) -> None:
        """In reverse order of construction: users of a service stop before it does."""
        await self.publish.close()
        await self.mounts.close()
        await self.clusters.close()
        await self.status.close()
        await self.rucio.close()
        await self.gateway.close()
        await self.rucio_auth.close()
        if self.credentials is not None:
            await self.credentials.close()
