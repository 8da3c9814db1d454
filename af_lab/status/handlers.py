import tornado.web

from ..handlers import AFLabHandler


class StatusHandler(AFLabHandler):
    @tornado.web.authenticated
    async def get(self):
        refresh = self.get_query_argument("refresh", "0").lower() in ("1", "true", "yes")
        self.write_json({"services": await self.services.status.all(refresh=refresh)})


handlers = [("status", StatusHandler)]
