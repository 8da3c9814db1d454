"""The base of every af-lab HTTP handler: authentication, JSON, error mapping.

Handlers stay thin: parse the request, call one service method, write JSON.
"""

from __future__ import annotations

import json
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler

from .errors import AFLabError, BadRequest
from .validation import parse_body


class AFLabHandler(APIHandler):
    """Every af-lab route derives from this; ``prepare`` refuses anonymous requests.

    Each verb is also decorated with ``@tornado.web.authenticated``; the check in
    ``prepare`` makes a forgotten decorator harmless, and a test walks every
    registered route to prove it.
    """

    @property
    def services(self):
        return self.settings["af_lab"]

    async def prepare(self):
        await super().prepare()
        if self.current_user is None:
            raise tornado.web.HTTPError(403)

    def json_body(self) -> dict[str, Any]:
        """The request's JSON object, checked against this route's schema (:mod:`af_lab.validation`)."""
        if not self.request.body:
            return {}
        key = f"{type(self).__module__}.{type(self).__name__}.{self.request.method.lower()}"
        return parse_body(self.request.body, key)

    def query_int(self, name: str, default: int, minimum: int = 0, maximum: int = 1_000_000_000) -> int:
        """An integer query argument within [minimum, maximum], else a 400 naming it."""
        value = self.get_query_argument(name, None)
        if value is None or value == "":
            return default
        text = value.strip()
        if not (text.isascii() and text.lstrip("-").isdigit() and len(text) <= 12) or not minimum <= int(text) <= maximum:
            raise BadRequest(f"{name} must be a whole number between {minimum} and {maximum}", field=name,
                             rule=f"integer in [{minimum}, {maximum}]")
        return int(text)

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, AFLabError):
            self.set_status(exc.status)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(exc.to_json()))
            return
        super().write_error(status_code, **kwargs)

    def log_exception(self, typ, value, tb):
        # Expected service errors are answers, not server faults: log one line, no traceback.
        if isinstance(value, AFLabError):
            self.log.info("af-lab %s %s -> %s %s", self.request.method, self.request.path, value.status, value.kind)
            return
        super().log_exception(typ, value, tb)

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, AFLabError) and not self._finished:
            self.log_exception(type(e), e, e.__traceback__)
            self.send_error(e.status, exc_info=(type(e), e, e.__traceback__))
            return
        super()._handle_request_exception(e)
