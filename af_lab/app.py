"""The Jupyter server extension: builds the services once and routes to them.

Layers: handlers (thin, tornado) -> services (rucio, mounts, clusters, publish,
status; plain asyncio) -> the credential service (the only code that talks to
Vault or touches a secret).
"""

from __future__ import annotations

import importlib

from jupyter_server.extension.application import ExtensionApp
from tornado.ioloop import IOLoop

from .config import AFLab
from .services import Services

# One module per capability, each exporting ``handlers = [(path, HandlerClass), ...]``.
CAPABILITIES = ("status", "events", "vault", "rucio", "mounts", "clusters", "publish", "attachments",
                "rootfile")


def route_table() -> list[tuple[str, type]]:
    """Every af-lab route as (path below /af-lab/, or below the base URL when it starts with "/", handler)."""
    table = []
    for cap in CAPABILITIES:
        try:
            module = importlib.import_module(f"af_lab.{cap}.handlers")
        except ModuleNotFoundError as exc:
            if exc.name != f"af_lab.{cap}.handlers":
                raise
            continue
        table.extend(module.handlers)
    return table


class AFLabApp(ExtensionApp):
    name = "af_lab"
    load_other_extensions = True

    def initialize_settings(self):
        config = AFLab(parent=self.serverapp)
        self.services = Services(config, log=self.log, root_dir=self.serverapp.root_dir)
        self.settings["af_lab"] = self.services
        # As soon as the loop runs (the same in tests, which never call the post-start hook).
        IOLoop.current().add_callback(self.services.start)
        self.log.info("af-lab: %d Rucio instance(s), Vault %s", len(config.rucio_instances), config.vault_address or "off")

    def initialize_handlers(self):
        # A path starting with "/" is below the base URL itself (dask-labextension's routes, see clusters).
        self.handlers.extend(
            (path[1:] if path.startswith("/") else f"af-lab/{path}", handler) for path, handler in route_table()
        )

    async def stop_extension(self):
        await self.services.close()
