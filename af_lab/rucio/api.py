"""Rucio's REST API as blocking calls on one authenticated session (run them in the gateway's pool).

The catalogue calls mounts and publish need, spoken over the same :class:`RucioSession`
as browsing: the token travels in a header, never in a file, and a transport fault is
already a 503 naming the instance. Answers are decoded as rucio-clients decodes them
(``parse_response``: dates become datetimes) and refusals raise the rucio exception
class Rucio named, so code written against rucio-clients' behaviour reads the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from rucio.common import exception as rx
from rucio.common.utils import parse_response, render_json

from .errors import response_exception


def _q(part: str) -> str:
    return quote(part, safe="")


class RucioAPI:
    """Blocking Rucio calls; ``session`` is a :class:`af_lab.vault.rucio_auth.RucioSession`."""

    def __init__(self, session: Any):
        self.session = session

    @property
    def account(self) -> str:
        return self.session.account

    # ------------------------------------------------------------------ transport
    def _call(self, method: str, path: str, ok: int = 200, *, params=None, body: Any = None, stream: bool = False):
        data = render_json(**body) if isinstance(body, dict) else None
        # Any type, as rucio-clients asks: each endpoint answers in the one it supports.
        resp = self.session.request(method, path, params=params, data=data, stream=stream, accept="*/*")
        if resp.status_code != ok:
            with resp:
                cls, msg = response_exception(resp)
                exc = getattr(rx, cls, None) if cls else None
                if not (isinstance(exc, type) and issubclass(exc, rx.RucioException)):
                    exc, msg = rx.RucioException, f"{cls or 'HTTP'} {resp.status_code}: {msg}"
                error = exc(msg)
                error.http_status = resp.status_code
                raise error
        return resp

    def _one(self, method: str, path: str, ok: int = 200, **kw) -> Any:
        """The answer (the first item of a streamed one), decoded."""
        return next(self._lines(method, path, ok, **kw), None)

    def _lines(self, method: str, path: str, ok: int = 200, **kw) -> Iterator[Any]:
        """The answer's items: one per line of a JSON stream, else the whole JSON answer as one."""
        resp = self._call(method, path, ok, stream=True, **kw)
        with resp:
            if resp.headers.get("content-type", "").startswith("application/x-json-stream"):
                for line in resp.iter_lines(chunk_size=65536):
                    if line:
                        yield parse_response(line)
            elif resp.text:
                try:  # JSON, whatever the content type says (a new rule's ids come as text/html)
                    yield parse_response(resp.text)
                except ValueError:
                    yield resp.text  # "Created" and the like

    # ------------------------------------------------------------------ DIDs
    def get_did(self, scope: str, name: str, dynamic_depth: str | None = None) -> dict:
        params = {"dynamic_depth": dynamic_depth} if dynamic_depth else None
        return self._one("GET", f"/dids/{_q(scope)}/{_q(name)}", params=params)

    def list_files(self, scope: str, name: str) -> Iterator[dict]:
        return self._lines("GET", f"/dids/{_q(scope)}/{_q(name)}/files")

    def list_content(self, scope: str, name: str) -> Iterator[dict]:
        return self._lines("GET", f"/dids/{_q(scope)}/{_q(name)}/dids")

    def get_metadata(self, scope: str, name: str, plugin: str = "DID_COLUMN") -> dict:
        return self._one("GET", f"/dids/{_q(scope)}/{_q(name)}/meta", params={"plugin": plugin})

    def get_metadata_bulk(self, dids: list[dict], inherit: bool = False, plugin: str = "DID_COLUMN") -> Iterator[dict]:
        return self._lines("POST", "/dids/bulkmeta", body={"dids": dids, "inherit": inherit, "plugin": plugin})

    def set_dids_metadata_bulk(self, dids: list[dict], recursive: bool = False) -> None:
        self._one("POST", "/dids/bulkdidsmeta", 201, body={"dids": dids, "recursive": recursive})

    def add_did(self, scope: str, name: str, did_type: str, files: list[dict] | None = None,
                rse: str | None = None) -> None:
        body: dict[str, Any] = {"type": did_type}
        if files:
            body["dids"] = files
        if rse:
            body["rse"] = rse
        self._one("POST", f"/dids/{_q(scope)}/{_q(name)}", 201, body=body)

    def add_dataset(self, scope: str, name: str, files: list[dict] | None = None, rse: str | None = None) -> None:
        self.add_did(scope, name, "DATASET", files, rse)

    def add_container(self, scope: str, name: str) -> None:
        self.add_did(scope, name, "CONTAINER")

    def attach_dids(self, scope: str, name: str, dids: list[dict], rse: str | None = None) -> None:
        body: dict[str, Any] = {"dids": dids}
        if rse:
            body["rse"] = rse
        self._one("POST", f"/dids/{_q(scope)}/{_q(name)}/dids", 201, body=body)

    def list_did_rules(self, scope: str, name: str) -> Iterator[dict]:
        return self._lines("GET", f"/dids/{_q(scope)}/{_q(name)}/rules")

    # ------------------------------------------------------------------ replicas
    def list_replicas(self, dids: list[dict], schemes: list[str] | None = None, all_states: bool = False,
                      rse_expression: str | None = None, resolve_archives: bool = True) -> Iterator[dict]:
        # sort=random: the default geoip sort costs Rucio a lookup per replica.
        body: dict[str, Any] = {"dids": dids, "all_states": all_states, "resolve_archives": resolve_archives,
                                "sort": "random", "ignore_availability": True}
        if schemes:
            body["schemes"] = schemes
        if rse_expression:
            body["rse_expression"] = rse_expression
        return self._lines("POST", "/replicas/list", body=body)

    def add_replicas(self, rse: str, files: list[dict]) -> None:
        self._one("POST", "/replicas", 201, body={"rse": rse, "files": files, "ignore_availability": True})

    # ------------------------------------------------------------------ rules
    def add_replication_rule(self, dids: list[dict], copies: int, rse_expression: str, lifetime: int | None = None,
                             grouping: str = "DATASET", comment: str | None = None, ask_approval: bool = False) -> list:
        return self._one("POST", "/rules/", 201, body={
            "dids": dids, "copies": copies, "rse_expression": rse_expression, "lifetime": lifetime,
            "grouping": grouping, "comment": comment, "ask_approval": ask_approval, "weight": None,
            "account": None, "locked": False, "purge_replicas": False,
            "ignore_availability": False, "asynchronous": False, "priority": 3, "notify": "N",
            "source_replica_expression": None, "activity": None, "delay_injection": None, "meta": None,
        })

    def get_replication_rule(self, rule_id: str) -> dict:
        return self._one("GET", f"/rules/{_q(rule_id)}")

    def delete_replication_rule(self, rule_id: str, purge_replicas: bool = False) -> None:
        self._one("DELETE", f"/rules/{_q(rule_id)}", body={"purge_replicas": purge_replicas})

    # ------------------------------------------------------------------ RSEs, accounts, scopes
    def list_scopes(self) -> list[str]:
        return self._one("GET", "/scopes/")

    def get_rse(self, rse: str) -> dict:
        return self._one("GET", f"/rses/{_q(rse)}")

    def list_rses(self, rse_expression: str | None = None) -> Iterator[dict]:
        return self._lines("GET", "/rses/", params={"expression": rse_expression} if rse_expression else None)

    def get_protocols(self, rse: str) -> Any:
        return self._one("GET", f"/rses/{_q(rse)}/protocols", params={"protocol_domain": "ALL"})

    def list_scopes_for_account(self, account: str) -> list[str]:
        return self._one("GET", f"/accounts/{_q(account)}/scopes/")

    def list_account_attributes(self, account: str) -> Iterator[Any]:
        return self._lines("GET", f"/accounts/{_q(account)}/attr/")

    def get_local_account_limits(self, account: str) -> dict:
        return self._one("GET", f"/accounts/{_q(account)}/limits/local")

    def get_local_account_limit(self, account: str, rse: str) -> dict:
        return self._one("GET", f"/accounts/{_q(account)}/limits/local/{_q(rse)}")

    def get_global_account_limits(self, account: str) -> dict:
        return self._one("GET", f"/accounts/{_q(account)}/limits/global")

    def get_local_account_usage(self, account: str, rse: str | None = None) -> Iterator[dict]:
        suffix = f"/{_q(rse)}" if rse else ""
        return self._lines("GET", f"/accounts/{_q(account)}/usage/local{suffix}")

    def get_global_account_usage(self, account: str) -> Iterator[dict]:
        return self._lines("GET", f"/accounts/{_q(account)}/usage/global")
