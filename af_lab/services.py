"""The container of af-lab's services, one instance per server process."""

from __future__ import annotations

import logging

from .config import AFLab
from .events.bus import EventBus
from .status.service import StatusService
from .vault.credentials import CredentialService


class Services:
    def __init__(self, config: AFLab, log: logging.Logger | None = None, root_dir: str = "."):
        self.config = config
        self.log = log or logging.getLogger("af_lab")
        self.root_dir = root_dir
        self.events = EventBus()
        self.credentials = CredentialService(config, log=self.log) if config.vault_address else None
        self.status = StatusService(config, credentials=self.credentials)

    async def close(self) -> None:
        if self.credentials is not None:
            await self.credentials.close()
