import tornado.web

from ..handlers import AFLabHandler


class StatusHandler(AFLabHandler):
    @tornado.web.authenticated
    async def get(self):
        self.write_json({"services": await self.services.status.all()})


handlers = [("status", StatusHandler)]
