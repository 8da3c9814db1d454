"""REST routes of notebook attachments (below ``/af-lab/``). Thin: parse, call ``services.attachments``.

``POST attachments/resolve``  body ``{"attachments": [{"did", "mode"?, "instance"?}], "refresh"?: bool}``
  200 ``{"attachments": [{"did", "mode", "instance", "state", "message",
         "mount": {"id", "mode", "state", "message", "target", "fileset", "files", "bytes"}|null,
         "rucio": {"type", "files", "bytes"}|null}]}`` — one entry per request item, in order;
  ``state``: mounted | mounting | stale | not_mounted | gone | invalid | unknown
  (see ``attachments/service.py``). A bad item is answered in place, never a failed request.

``GET attachments/session?notebook=<workspace path>[&kernel=<kernel id>]``
  200 ``{"notebook", "kernel_id"|null, "dids": [{"did", "mode"?, "instance"?}]}`` — what the kernel
  running that notebook mounted through af-lab (its latest report, ``PUT publish/sessions/<kernel>``);
  with ``kernel``, that kernel's report wherever it was filed (the notebook may have been renamed).
"""

from __future__ import annotations

import tornado.web

from ..errors import BadRequest
from ..handlers import AFLabHandler


class ResolveHandler(AFLabHandler):
    @tornado.web.authenticated
    async def post(self):
        self.write_json(await self.services.attachments.resolve(self.json_body()))


class SessionHandler(AFLabHandler):
    @tornado.web.authenticated
    async def get(self):
        notebook = self.get_argument("notebook", "")
        kernel = self.get_argument("kernel", "") or None
        if not (notebook or kernel) or len(notebook) > 1024 or (kernel and len(kernel) > 128):
            raise BadRequest(
                "notebook (the notebook's workspace path, at most 1024 characters) or kernel (its kernel id) "
                "is required.",
                field="notebook",
            )
        self.write_json(await self.services.attachments.session(notebook or None, kernel))


handlers = [("attachments/resolve", ResolveHandler), ("attachments/session", SessionHandler)]
