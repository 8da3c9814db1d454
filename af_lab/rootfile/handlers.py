"""REST contract of the ROOT file viewer (a thin handler over :class:`RootFileService`).

``POST rootfile/contents`` ``{"path": "<workspace path of a .root file>"}``
    ``{"path", "bytes", "reader": "uproot 5.x" | null, "message"?, "truncated"?,
    "trees": [{"name", "entries", "branches": [{"name", "type"}], "truncated"}],
    "objects": [{"name", "class"}]}``; ``reader`` null (with ``message``) when the server
    cannot read ROOT files. 400 not a ROOT file or a bad path, 404 no such file.
"""

from __future__ import annotations

import tornado.web

from ..handlers import AFLabHandler


class RootFileHandler(AFLabHandler):
    @tornado.web.authenticated
    async def post(self):
        body = self.json_body()
        self.write_json(await self.services.rootfile.contents(body.get("path")))


handlers = [("rootfile/contents", RootFileHandler)]
