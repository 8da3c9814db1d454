"""The one way af-lab talks to Rucio: every call of browse, mounts and publish goes through here.

What lives here and nowhere else: which instance a name means (:mod:`.names`), the
authenticated transport per instance (:class:`RucioAuth`: tokens from the credential
service, in headers only), the thread pool Rucio calls block in, the reject → log in
again → retry once, the translation of Rucio's failures into af-lab's typed errors
(:mod:`.errors`), and the memo of small answers shared by every caller (a DID's
files listed for a mount are reused by the next mount of it). Services get the
gateway in their constructor and call its typed async methods (below: browse and mounts,
then publish; multi-call bodies in :mod:`.catalog` and :mod:`.publishing`); none of them
sees a token or imports rucio-clients. Uploads (rucio-clients' RSE protocol layer) come
as a :class:`~.upload.Storage` from :meth:`RucioGateway.storage`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..config import AFLab
from ..errors import AFLabError, Unauthorized
from ..vault.rucio_auth import RucioAuth, RucioSession, TokenRejected
from . import catalog, names, publishing
from .api import RucioAPI
from .errors import from_exception
from .upload import Storage, ensure_client_config

MEMO_MAX = 2000  # small answers (DID details, scopes, RSEs) kept in memory
FILE_LISTS_MAX = 16  # DID file lists kept in memory (a warm re-mount needs no Rucio call)


class RucioGateway:
    def __init__(self, config: AFLab, auth: RucioAuth, log: logging.Logger | None = None):
        self.config = config
        self.auth = auth
        self.log = log or logging.getLogger("af_lab")
        workers = max(1, config.rucio_concurrency)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="af-lab-rucio")
        # Streams (listings into the cache, replica listings of big mounts) hold a thread for
        # their whole length: their own threads keep short calls moving meanwhile.
        self._streams = ThreadPoolExecutor(workers, thread_name_prefix="af-lab-rucio-stream")
        self._inflight: dict[Any, asyncio.Future] = {}
        self._memo: dict[Any, tuple[float, Any]] = {}

    async def start(self) -> None:
        # rucio-clients' RSE layer (uploads) needs a client configuration, even an empty one.
        await asyncio.to_thread(ensure_client_config)

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._streams.shutdown(wait=False, cancel_futures=True)

    # ================================================================ instances
    def instance(self, name: Any, field: str = "instance") -> dict[str, Any]:
        return names.instance(self.config, name, field)

    def instances(self) -> list[dict[str, Any]]:
        default = self.config.rucio_instance()["name"] if self.config.rucio_instances else None
        return [
            {"name": i["name"], "display_name": i.get("display_name") or i["name"],
             "auth_type": i.get("auth_type", "userpass"), "account": i.get("account"),
             "rucio_host": i["rucio_host"], "webui_url": i.get("webui_url"), "default": i["name"] == default}
            for i in self.config.rucio_instances
        ]

    def account(self, instance: str) -> str:
        return self.instance(instance).get("account") or ""

    # ================================================================ the one call path
    async def run(self, fn: Callable, *args: Any, stream: bool = False) -> Any:
        """``fn(*args)`` in the gateway's threads (Rucio calls and the listing cache's SQLite)."""
        pool = self._streams if stream else self._pool
        return await asyncio.get_running_loop().run_in_executor(pool, functools.partial(fn, *args))

    async def session(self, instance: str) -> RucioSession:
        """The instance's authenticated session (credential errors surface here, before any work)."""
        return await self.auth.session(self.instance(instance)["name"])

    async def rest(self, instance: str, call: Callable[..., Any], *args: Any, stream: bool = False,
                   session: RucioSession | None = None) -> Any:
        """``call(session, *args)`` in a thread; when Rucio rejects the token, log in again once."""
        inst = self.instance(instance)["name"]
        session = session or await self.auth.session(inst)
        try:
            return await self.run(call, session, *args, stream=stream)
        except TokenRejected:
            session = await self.auth.renew(inst, session)
            try:
                return await self.run(call, session, *args, stream=stream)
            except TokenRejected:
                raise rejected(inst) from None

    async def call(self, instance: str, what: str, fn: Callable[..., Any], *args: Any, stream: bool = False) -> Any:
        """``fn(api, *args)`` on the instance's :class:`RucioAPI`; any failure comes out typed.

        ``what`` says what was being done, for the error message ("listing files of x:y").
        """
        inst = self.instance(instance)["name"]

        def run(session: RucioSession, *a: Any) -> Any:
            try:
                return fn(RucioAPI(session), *a)
            except (TokenRejected, AFLabError):
                raise
            except Exception as exc:
                raise from_exception(exc, inst, what) from None

        return await self.rest(inst, run, *args, stream=stream)

    # ================================================================ sharing answers
    async def shared(self, key: Any, factory: Callable[[], Any]) -> Any:
        """Callers asking for ``key`` while it runs await the same result."""
        fut = self._inflight.get(key)
        if fut is None:
            fut = asyncio.ensure_future(factory())
            self._inflight[key] = fut

            def done(f, key=key):
                if self._inflight.get(key) is f:
                    del self._inflight[key]
                if not f.cancelled():
                    f.exception()  # mark retrieved: a caller may have gone away

            fut.add_done_callback(done)
        try:
            return await asyncio.shield(fut)  # one caller going away must not cancel the others' call
        except AFLabError as exc:
            raise again(exc) from None

    async def memoised(self, key: tuple, refresh: bool, factory: Callable[[], Any]) -> Any:
        """A small answer kept ``listing_cache_ttl`` seconds (``refresh`` asks Rucio again)."""
        hit = self._memo.get(key)
        if hit and not refresh and hit[0] > time.monotonic():
            return hit[1]
        value = await self.shared(key, factory)
        now = time.monotonic()
        self._memo.pop(key, None)
        if len(self._memo) >= MEMO_MAX:  # browsing many DIDs must not grow memory without bound
            self._memo = {k: v for k, v in self._memo.items() if v[0] > now}
            while len(self._memo) >= MEMO_MAX:
                self._memo.pop(next(iter(self._memo)))
        lists = [k for k in self._memo if k[0] == "files"]
        for k in lists[: max(0, len(lists) - FILE_LISTS_MAX + 1)] if key[0] == "files" else ():
            del self._memo[k]
        self._memo[key] = (now + self.config.listing_cache_ttl, value)
        return value

    # ================================================================ what the services need
    async def scopes(self, instance: str, refresh: bool = False) -> list[str]:
        inst = self.instance(instance)["name"]
        return await self.memoised(("scopes", inst), refresh, lambda: self.call(
            inst, "listing the scopes", lambda api: sorted(api.list_scopes())))

    async def did_files(self, instance: str, scope: str, name: str, refresh: bool = False) -> tuple[str, list[dict]]:
        """The DID's type and files ({scope, name, bytes, adler32, folder}); a container keeps its folders."""
        inst = self.instance(instance)["name"]
        return await self.memoised(("files", inst, scope, name), refresh, lambda: self.call(
            inst, f"listing the files of {scope}:{name}", catalog.did_files, scope, name, stream=True))

    async def replicas(self, instance: str, files: list[dict], on_file: Callable | None = None) -> dict:
        """Available replicas per (scope, name): [{rse, url, scheme}]; ``on_file`` sees each as it arrives."""
        return await self.call(instance, "listing replicas", catalog.replicas, files, on_file, stream=True)

    async def protocol_prefixes(self, instance: str, rses: list[str]) -> dict[str, list[str]]:
        return await self.call(instance, "reading RSE protocols", catalog.protocol_prefixes, rses)

    async def add_rule(self, instance: str, scope: str, name: str, rse: str, lifetime_s: int) -> str:
        return await self.call(instance, f"adding a rule for {scope}:{name} on {rse}", catalog.add_rule,
                               scope, name, rse, lifetime_s)

    async def rule(self, instance: str, rule_id: str) -> dict[str, Any]:
        return await self.call(instance, f"reading rule {rule_id}", catalog.rule_state, rule_id)

    async def delete_rule(self, instance: str, rule_id: str) -> None:
        await self.call(instance, f"deleting rule {rule_id}", catalog.delete_rule, rule_id)


    # ================================================================ what publish needs
    # The account's side: scopes it owns, RSEs and quota (the account is the instance's).
    async def owned_scopes(self, instance: str) -> list[str]:
        return await self.call(instance, "listing your scopes", publishing.owned_scopes, self.account(instance))

    async def is_admin(self, instance: str) -> bool:
        return await self.call(instance, "reading your account's attributes", publishing.is_admin,
                               self.account(instance))

    async def rses(self, instance: str, expression: str | None = None) -> list[dict[str, Any]]:
        return await self.call(instance, "listing the RSEs", lambda api: list(api.list_rses(expression)))

    async def rse_settings(self, instance: str, rse: str) -> dict[str, Any]:
        """What rucio-clients' RSE protocol layer needs to write there (protocols, determinism)."""
        return await self.call(instance, f"reading the description of {rse}", lambda api: api.get_rse(rse))

    async def local_limits(self, instance: str) -> dict[str, float]:
        account = self.account(instance)
        return await self.call(instance, "reading your quota", lambda api: dict(api.get_local_account_limits(account)))

    async def local_usage(self, instance: str) -> dict[str, int]:
        """Bytes the account uses per RSE."""
        return await self.call(instance, "reading your usage", publishing.local_usage, self.account(instance))

    async def usage(self, instance: str, rse: str) -> tuple[int, float | None]:
        """(bytes used, limit or None) of the account on ``rse``."""
        return await self.call(instance, f"reading your quota on {rse}", publishing.usage, self.account(instance), rse)

    async def global_quota_left(self, instance: str, rse: str) -> list[tuple[str, float]]:
        return await self.call(instance, "reading your global quota", publishing.global_quota_left,
                               self.account(instance), rse)

    # DIDs: lookups.
    async def did_metadata(self, instance: str, scope: str, name: str) -> dict[str, Any] | None:
        """The DID's metadata, None if it does not exist."""
        return await self.call(instance, f"looking up {scope}:{name}", publishing.metadata, scope, name)

    async def existing_dids(self, instance: str, scope: str, names: Iterable[str]) -> dict[str, dict[str, Any]]:
        """name -> metadata of the ``names`` that exist in ``scope``, in bulk."""
        return await self.call(instance, f"looking up names in {scope}", publishing.existing, scope, list(names))

    async def content_names(self, instance: str, scope: str, name: str) -> set[tuple[str, str]]:
        return await self.call(instance, f"listing {scope}:{name}", publishing.content_names, scope, name)

    async def did_rules(self, instance: str, scope: str, name: str) -> list[dict[str, Any]]:
        return await self.call(instance, f"listing the rules of {scope}:{name}",
                               lambda api: list(api.list_did_rules(scope, name)))

    async def replica_states(self, instance: str, scope: str, names: Sequence[str], rse: str) -> dict[str, str]:
        return await self.call(instance, f"checking replicas on {rse}", publishing.replica_states, scope, names, rse)

    async def custom_metadata(self, instance: str, scope: str, name: str) -> dict[str, Any]:
        return await self.call(instance, f"reading metadata of {scope}:{name}", publishing.custom_metadata,
                               scope, name)

    # DIDs: registration, rules, metadata (each call one server transaction).
    async def add_dataset(self, instance: str, scope: str, name: str, files: Sequence[dict] | None = None,
                          rse: str | None = None, exist_ok: bool = False) -> None:
        """A dataset, with ``files`` registered on ``rse`` and attached in the same transaction."""
        await self.call(instance, f"creating dataset {scope}:{name}", publishing.add_dataset, scope, name, files,
                        rse, exist_ok)

    async def attach(self, instance: str, scope: str, name: str, files: Sequence[dict],
                     rse: str | None = None) -> None:
        """Attach ``files`` (with ``rse``: and register their replicas there) in one transaction."""
        await self.call(instance, f"attaching files to {scope}:{name}",
                        lambda api: api.attach_dids(scope, name, list(files), rse=rse))

    async def add_replicas(self, instance: str, rse: str, files: Sequence[dict]) -> None:
        """Register ``files`` (scope, name, bytes, adler32[, md5]) as AVAILABLE replicas on ``rse``."""
        await self.call(instance, f"registering replicas on {rse}", lambda api: api.add_replicas(rse, list(files)))

    async def add_rules(self, instance: str, dids: Sequence[dict], rse: str, lifetime_s: int | None,
                        comment: str, one_by_one: bool = False) -> list[str]:
        """One rule per DID on ``rse``; ``one_by_one`` after an ambiguous bulk call follows existing ones."""
        fn = publishing.add_rules_each if one_by_one else publishing.add_rules
        return await self.call(instance, f"creating replication rules on {rse}", fn, dids, rse, lifetime_s, comment)

    async def rule_details(self, instance: str, rule_id: str) -> dict[str, Any]:
        """The rule as Rucio describes it (:meth:`rule` is the summary mounts follow)."""
        return await self.call(instance, f"reading rule {rule_id}", lambda api: api.get_replication_rule(rule_id))

    async def into_container(self, instance: str, scope: str, name: str, child: dict) -> None:
        """Create the container if needed and attach ``child``; both idempotent."""
        await self.call(instance, f"attaching {child['scope']}:{child['name']} to {scope}:{name}",
                        publishing.into_container, scope, name, child)

    async def storage(self, settings: dict[str, Any], auth_token: str | None = None) -> Storage:
        """The upload helper for the RSE ``settings`` describe (:meth:`rse_settings`): copies,
        verification and removal through rucio-clients' protocol layer. A 400 naming ``rse``
        when af-lab cannot write there (non-deterministic, no protocol it writes with)."""
        return await asyncio.to_thread(Storage, settings, auth_token)

    async def set_metadata(self, instance: str, entries: Sequence[dict[str, Any]]) -> bool:
        """Custom metadata in bulk; False if the server keeps none (Rucio's JSON plugin off)."""
        return await self.call(instance, "recording metadata", publishing.set_metadata, entries)


def again(exc: AFLabError) -> AFLabError:
    """A fresh copy of a shared error, so concurrent callers do not share one traceback."""
    return type(exc)(exc.message, **exc.details)


def rejected(inst: str) -> Unauthorized:
    return Unauthorized(f"Rucio instance '{inst}' keeps rejecting your login. Enter your credentials again "
                        "in the Data panel.", instance=inst, action="enter_credentials")
