"""How Publish gets an authenticated rucio-clients ``Client`` for (user, instance).

Only through the Rucio service (``services.rucio``), which owns credentials
(from Vault) and their refresh. This module is the one seam between Publish and
that service, so a change of its API touches one function here.
"""

from __future__ import annotations

import inspect
from typing import Any

from ..errors import BadRequest, NotFound, ServiceUnavailable


class ClientAccess:
    def __init__(self, services: Any):
        self._services = services

    def instance(self, name: str | None) -> dict[str, Any]:
        config = self._services.config
        if not config.rucio_instances:
            raise ServiceUnavailable("No Rucio instance is configured (c.AFLab.rucio_instances).")
        if name is not None and not isinstance(name, str):
            raise BadRequest("instance must be a Rucio instance name.", field="instance")
        try:
            return config.rucio_instance(name or None)
        except KeyError:
            known = ", ".join(i["name"] for i in config.rucio_instances)
            raise NotFound(f"Unknown Rucio instance {name!r}; configured: {known}.", field="instance") from None

    def account(self, instance: str) -> str:
        return self.instance(instance).get("account") or ""

    async def client(self, instance: str, fresh: bool = False) -> Any:
        """An authenticated Client; ``fresh`` asks for new credentials (after an auth failure)."""
        rucio = getattr(self._services, "rucio", None)
        if rucio is None:
            raise ServiceUnavailable("The Rucio service is not available in this server.")
        if fresh and "fresh" in inspect.signature(rucio.client).parameters:
            return await _maybe_await(rucio.client(instance, fresh=True))
        return await _maybe_await(rucio.client(instance))


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value
