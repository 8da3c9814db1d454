"""Submit-time checks of a publish plan against Rucio, through the gateway's typed methods.

Everything that can be known before a byte moves is checked here, so a bad request
is answered at once with a message naming the field: scope ownership, the RSE
(exists, open for writes, writable by our protocols), names already taken, the
target dataset/container, and quota.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..errors import BadRequest, Conflict, Forbidden, InsufficientStorage
from ..rucio.gateway import RucioGateway
from ..units import human_bytes
from . import naming
from .plan import Plan


async def free_name(gateway: RucioGateway, instance: str, scope: str, name: str) -> str | None:
    """A version of ``name`` not taken in ``scope`` (``hist_v2.root``...), asked in one bulk lookup."""
    taken = set(await gateway.existing_dids(instance, scope, naming.variants(name)))
    return naming.suggest(name, lambda _candidates: taken)


async def check_in_rucio(gateway: RucioGateway, p: Plan) -> None:
    """Scope ownership, RSE, quota, dataset/container state and name conflicts.

    The lookups are independent, so they are asked all at once (the gateway bounds how many
    run together): one round of Rucio calls instead of nine in a row. Their answers are then
    judged in a fixed order, so the first problem named is the same as when asked one by one.
    """
    req = p.request
    inst = req.instance
    answers = await asyncio.gather(
        gateway.owned_scopes(inst),
        gateway.rses(inst),
        gateway.rse_settings(inst, req.rse),
        gateway.existing_dids(inst, req.scope, [i.name for i in p.items]),
        _collection(gateway, inst, req.dataset, "DATASET", "dataset") if req.dataset else _nothing(),
        _collection(gateway, inst, req.container, "CONTAINER", "container") if req.container else _nothing(),
        gateway.usage(inst, req.rse),
        gateway.is_admin(inst),
        gateway.global_quota_left(inst, req.rse),
        return_exceptions=True,
    )
    ask_owned, ask_rses, ask_settings, ask_existing, ask_dataset, ask_container, *ask_quota = map(_answer, answers)
    owned = ask_owned()
    for scope, field in (
        (req.scope, "scope"),
        *((d[0], k) for d, k in ((req.dataset, "dataset"), (req.container, "container")) if d),
    ):
        if scope not in owned:
            mine = ", ".join(owned) or "none"
            raise Forbidden(
                f"Account {p.account} does not own scope {scope}, so it cannot publish there. Scopes you own: {mine}.",
                field=field,
                scopes=owned,
            )

    rses = {r["rse"]: r for r in ask_rses()}
    if req.rse not in rses:
        raise BadRequest(f"There is no RSE called {req.rse} on this Rucio instance.", field="rse")
    if not rses[req.rse].get("availability_write", True):
        raise Forbidden(
            f"{req.rse} is not accepting writes at the moment (availability_write is off). Choose another RSE.",
            field="rse",
        )
    await gateway.storage(ask_settings())  # refuses non-deterministic RSEs, RSEs we cannot write

    # Names that exist already: same size may be the same content (decided once hashed), else refused.
    existing = ask_existing()
    differ = []
    for item in p.items:
        meta = existing.get(item.name)
        if meta is None:
            continue
        if meta.get("did_type") != "FILE" or int(meta.get("bytes") or -1) != item.bytes:
            differ.append(item)
        else:
            item.taken = True
    if differ:
        first = differ[0]
        alt = await free_name(gateway, inst, req.scope, first.name)
        what = (
            f"{req.scope}:{first.name} already exists in Rucio with different content"
            if len(differ) == 1
            else f"{len(differ)} DIDs already exist in Rucio with different content (first: {req.scope}:{first.name})"
        )
        raise Conflict(
            f"{what}. Rucio DIDs are immutable: publish under a new name"
            + (f", for example {alt}" if alt else "")
            + (" (or set name_prefix)." if len(differ) > 1 else "."),
            field="name",
            suggestion=alt,
            taken=[i.name for i in differ[:50]],
        )

    if req.dataset:
        meta = ask_dataset()
        p.dataset_new = meta is None
        if meta is not None and meta.get("is_open") is False:
            raise Conflict(
                f"Dataset {req.dataset[0]}:{req.dataset[1]} is closed; files cannot be added to it. "
                "Choose a new dataset name.",
                field="dataset",
            )
    if req.container:
        p.container_new = ask_container() is None

    if all(i.taken for i in p.items) and not p.dataset_new:
        p.warnings.append(
            "Every file already exists in Rucio under its name; if the content is the same "
            "the job will have nothing to copy."
        )
    check_quota(p, *(answer() for answer in ask_quota))


async def _nothing() -> None:
    return None


def _answer(result: Any) -> Callable[[], Any]:
    """A gathered answer, to be read when its check comes: the value, or its exception raised then."""

    def read() -> Any:
        if isinstance(result, BaseException):
            raise result
        return result

    return read


async def _collection(gateway: RucioGateway, inst: str, did: tuple[str, str], did_type: str, field: str) -> dict | None:
    """The metadata of an existing dataset/container ``did`` (None if new); another DID type there is refused."""
    meta = await gateway.did_metadata(inst, *did)
    if meta is not None and meta.get("did_type") != did_type:
        raise Conflict(
            f"{did[0]}:{did[1]} exists and is a {str(meta.get('did_type')).lower()}, not a {field}.",
            field=field,
        )
    return meta


def check_quota(p: Plan, usage: tuple[int, float | None], admin: bool, global_left: list[tuple[str, float]]) -> None:
    """The account's local (and any global) limit on the RSE must hold the new bytes.

    Checked for admins too when a limit is set: Rucio lets admins past quota, a site's limit
    still says how much they should use."""
    req = p.request
    need = sum(i.bytes for i in p.items if not i.taken)
    used, limit = usage
    p.quota = {"needed_bytes": need, "used_bytes": used, "limit_bytes": finite(limit), "admin": admin}
    if limit is None and not admin:
        raise InsufficientStorage(
            f"Account {p.account} has no quota on {req.rse}. Ask your facility for quota there or choose another RSE.",
            field="rse",
            **p.quota,
        )
    if limit is not None and used + need > limit:
        left = max(0, int(limit) - used)
        raise InsufficientStorage(
            f"Not enough quota on {req.rse}: these files need {human(need)}, and account {p.account} has "
            f"{human(left)} left of {human(limit)}. Free space (delete old rules) or choose another RSE.",
            field="rse",
            **p.quota,
        )
    for expression, left in global_left:
        if need > left:
            raise InsufficientStorage(
                f"Not enough quota under the limit for {expression}: these files need "
                f"{human(need)}, {human(max(0, left))} is left.",
                field="rse",
            )


def finite(value: Any) -> int | None:
    """A byte limit as an int; None for "no limit" (absent or infinite)."""
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if f == float("inf") or f < 0 else int(f)


def human(n: float | None) -> str:
    return "unlimited" if n is None else human_bytes(n)
