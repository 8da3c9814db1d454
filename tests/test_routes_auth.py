"""Every af-lab route refuses a request without the Jupyter token.

The test reads the route table from the running tornado app, so a route added
later is covered without anyone remembering to add it here.
"""

import json
import re

import pytest
from tornado.httpclient import HTTPClientError

from af_lab.app import route_table
from af_lab.handlers import AFLabHandler

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def af_lab_rules(web_app):
    """(regex, handler) of every af-lab route, wherever tornado keeps it (host routers nest).

    af-lab's routes are under /af-lab/, plus the few it serves below the base URL (dask-labextension's).
    """
    ours = {handler for _path, handler in route_table()}
    found, stack = [], [*web_app.wildcard_router.rules, *web_app.default_router.rules]
    while stack:
        rule = stack.pop()
        if hasattr(rule.target, "rules"):
            stack.extend(rule.target.rules)
            continue
        pattern = getattr(rule.matcher, "regex", None)
        if pattern is not None and ("/af-lab/" in pattern.pattern or rule.target in ours):
            found.append((pattern.pattern, rule.target))
    return found


def concrete_path(pattern: str, base_url: str) -> str:
    """Turn a route regex into a URL path, filling each group with a harmless value."""
    path = pattern.rstrip("$")
    path = re.sub(r"\(\?P<\w+>[^)]*\)|\([^)]*\)", "x", path)
    path = path.replace("\\", "")
    return path[len(base_url.rstrip("/")):] if path.startswith(base_url.rstrip("/")) else path


def test_route_table_is_registered(jp_serverapp):
    registered = af_lab_rules(jp_serverapp.web_app)
    assert len(registered) == len(route_table()) > 0
    for pattern, handler in registered:
        if "/af-lab/" in pattern:
            assert issubclass(handler, AFLabHandler), f"{handler.__name__} must derive from AFLabHandler"


async def test_every_route_refuses_anonymous_requests(jp_serverapp, jp_fetch, jp_base_url):
    checked = 0
    for pattern, handler in af_lab_rules(jp_serverapp.web_app):
        path = concrete_path(pattern, jp_base_url)
        for method in METHODS:
            if getattr(handler, method.lower()) is getattr(AFLabHandler, method.lower()):
                continue  # not implemented by this handler: tornado answers 405 anyway
            body = json.dumps({}) if method in ("POST", "PUT", "PATCH") else None
            with pytest.raises(HTTPClientError) as err:
                await jp_fetch(path.lstrip("/"), method=method, body=body, headers={"Authorization": ""},
                               allow_nonstandard_methods=True, follow_redirects=False)
            code = err.value.code
            # A browser-facing route (the dashboard proxy) sends anonymous GETs to the login page instead.
            to_login = code == 302 and "/login" in err.value.response.headers.get("Location", "")
            assert code in (401, 403) or to_login, f"{method} {path} answered {code} without a token"
            checked += 1
    assert checked >= 1


async def test_status_answers_with_token(jp_fetch):
    resp = await jp_fetch("af-lab", "status")
    services = json.loads(resp.body)["services"]
    by_id = {s["id"]: s for s in services}
    # Nothing configured: Rucio and Vault say so instead of failing; the cache dir is real.
    assert by_id["rucio"]["state"] == "not_configured"
    assert by_id["vault"]["state"] == "not_configured"
    assert by_id["cache"]["state"] == "connected"
