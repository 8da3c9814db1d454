"""The status service's rounds of probes (no facility: every service but the cache unconfigured)."""

from __future__ import annotations

import socket
import time

from af_lab.config import AFLab
from af_lab.status import service as status_mod
from af_lab.status.service import StatusService


def _by_id(services: list[dict]) -> dict:
    return {s["id"]: s for s in services}


async def test_a_busy_panel_never_waits_for_the_probes_after_the_first_round(tmp_path):
    """Past the reuse window the last answer is given at once while a new round runs; the
    next request sees that round; ``refresh`` waits for a round of its own."""
    used = [7]
    svc = StatusService(AFLab(cache_dir=str(tmp_path / "cache")), cache_bytes=lambda: used[0])
    first = await svc.all()  # no answer yet: the first request waits for the round
    assert _by_id(first)["cache"]["details"]["used_bytes"] == 7
    assert await svc.all() is first  # within the reuse window

    used[0] = 9
    svc._last = (time.monotonic() - status_mod.REUSE_S - 1, first)  # the window has passed
    assert await svc.all() is first  # answered at once ...
    assert not svc._round.done()  # ... while the new round runs
    await svc._round
    assert _by_id(await svc.all())["cache"]["details"]["used_bytes"] == 9

    used[0] = 11
    assert _by_id(await svc.all(refresh=True))["cache"]["details"]["used_bytes"] == 11

    svc._last = (time.monotonic() - status_mod.STALE_MAX_S - 1, svc._last[1])  # too old to give
    used[0] = 13
    assert _by_id(await svc.all())["cache"]["details"]["used_bytes"] == 13


def test_without_an_owner_the_cache_size_skips_the_views(tmp_path):
    """A view of a 50,000-file mount holds only links: walking it every round cost the server."""
    cache = tmp_path / "cache"
    (cache / "objects").mkdir(parents=True)
    (cache / "objects" / "f").write_bytes(b"x" * 100)
    (cache / "views" / "ab").mkdir(parents=True)
    for i in range(3):
        (cache / "views" / "ab" / f"l{i}").symlink_to("/nonexistent/" + "y" * 50)
    assert status_mod._dir_bytes(cache) == 100


async def test_every_round_tells_the_xcache_observer_what_it_found(tmp_path):
    """Stream mounts learn the XCache's state from the status rounds (they do not probe it per list)."""
    with socket.socket() as s:  # a port nobody listens on: an XCache that is down
        s.bind(("127.0.0.1", 0))
        url = f"root://127.0.0.1:{s.getsockname()[1]}"
    seen: list = []
    svc = StatusService(AFLab(cache_dir=str(tmp_path / "cache"), xcache_url=url, status_timeout=1),
                        xcache_observed=seen.append)  # fmt: skip
    await svc.all(refresh=True)
    assert len(seen) == 1 and seen[0]["url"] == url and seen[0]["state"] == "unreachable", seen

    quiet: list = []
    no_xcache = StatusService(AFLab(cache_dir=str(tmp_path / "cache")), xcache_observed=quiet.append)
    await no_xcache.all(refresh=True)
    assert quiet == [None]  # none configured: nothing to warn about
