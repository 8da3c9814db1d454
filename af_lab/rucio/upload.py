"""Copies to an RSE through rucio-clients' RSE protocol layer (``rsemanager``), one file per call.

The same steps as rucio-clients' ``UploadClient._upload_item``: write to
``<pfn>.rucio.upload``, stat the copy on the storage (size, adler32 where the
protocol reports one) against the local checksum, then rename to the final PFN.
Unlike ``rucio upload`` nothing here talks to the catalogue: registration is done
afterwards in bulk, and only for bytes already verified on the storage, so Rucio
never holds a COPYING replica for us. Calls are synchronous and thread-safe (a
protocol object per call); publish runs many in a bounded thread pool. The gateway
builds a :class:`Storage` (:meth:`~af_lab.rucio.gateway.RucioGateway.storage`): rucio-clients
is used here, behind the gateway, because its protocol layer does real work (posix,
XRootD, WebDAV writes) that the REST API alone would make af-lab rewrite.
"""

from __future__ import annotations

import configparser
import functools
import os
import threading
from dataclasses import dataclass
from typing import Any

from rucio.common import exception as rx
from rucio.common.utils import make_valid_did
from rucio.rse import rsemanager as rsemgr
from rucio.rse.protocols import posix

from ..checksum import file_adler32
from ..errors import BadRequest, Conflict, FileChanged, ServiceUnavailable
from ..paths import signature

TMP_SUFFIX = ".rucio.upload"


def ensure_client_config() -> None:
    """Give rucio-clients' RSE layer a configuration when the process has none.

    ``rsemanager``'s lfn2pfn translation reads ``[common]`` from a rucio.cfg and fails
    without one, even though every host and credential is passed explicitly. When no
    file is found, rucio's config lookup is pointed at an empty in-memory client
    configuration (``[client]`` keeps rucio-clients in client mode; no host, account or
    secret). Nothing is written to disk and ``os.environ`` is untouched, so kernels and
    terminals started by this server still find the user's own rucio.cfg. A site's own
    RUCIO_CONFIG (or any rucio.cfg rucio finds) is used as is.
    """
    from rucio.common import config as rconfig

    try:
        rconfig.get_config()  # cached by rucio-clients: cheap once found
        return
    except rx.ConfigNotFound:
        pass
    with _CONFIG_LOCK:
        if getattr(rconfig.get_config, "af_lab_fallback", False):
            return
        read_config_files = rconfig.get_config.__wrapped__  # rucio's own lookup, uncached

        @functools.cache
        def get_config_or_empty() -> configparser.ConfigParser:
            # A config that appears later (RUCIO_CONFIG set, file created) still wins
            # once rucio clears its cache (clean_cached_config).
            try:
                return read_config_files()
            except rx.ConfigNotFound:
                parser = configparser.ConfigParser()
                parser.read_string("[client]\n[common]\n")
                return parser

        get_config_or_empty.af_lab_fallback = True  # type: ignore[attr-defined]
        rconfig.get_config = get_config_or_empty


_CONFIG_LOCK = threading.Lock()


@dataclass
class Stored:
    pfn: str
    verified: str  # "adler32" or "size" (what the storage let us compare)


class Storage:
    def __init__(
        self,
        rse_settings: dict[str, Any],
        auth_token: str | None = None,
        domain: str = "wan",
    ):
        self.settings = rse_settings
        self.rse = rse_settings["rse"]
        self.auth_token = auth_token
        self.domain = domain
        if not rse_settings.get("deterministic", True):
            raise BadRequest(
                f"{self.rse} is a non-deterministic RSE; af-lab publishes to deterministic RSEs only.", field="rse"
            )
        try:
            self._protocol("write")
        except rx.RucioException as exc:
            raise BadRequest(f"{self.rse} offers no protocol af-lab can write with: {exc}", field="rse") from None

    def _protocol(self, operation: str):
        ensure_client_config()
        return rsemgr.create_protocol(self.settings, operation, domain=self.domain, auth_token=self.auth_token)

    def pfn(self, scope: str, name: str) -> str:
        proto = self._protocol("write")
        return next(iter(proto.lfns2pfns(make_valid_did({"scope": scope, "name": name})).values()))

    def store(self, local: str, scope: str, name: str, size: int, adler32: str, mtime_ns: int) -> Stored:
        """Copy ``local`` to its PFN and verify it there; raises FileChanged if the local file moved under us.

        An existing final PFN (a copy from an interrupted run: the DID is not registered, the
        caller checked) is kept if it verifies, else replaced.
        """
        proto = self._protocol("write")
        proto.connect()
        try:
            pfn = next(iter(proto.lfns2pfns(make_valid_did({"scope": scope, "name": name})).values()))
            if _exists(proto, pfn):
                found = self._check(proto, pfn, size, adler32)
                if found:
                    return Stored(pfn, found)
                # Not our bytes: our copies only reach the final PFN once verified. Someone else's
                # data (dark or just registered) is never deleted on a guess.
                raise Conflict(
                    f"{self.rse} already holds a different file where {scope}:{name} would go "
                    f"({pfn}), unknown to Rucio. Publish under another name, or ask the RSE's "
                    "admins to clean it up.",
                    field="name",
                )
            tmp = pfn + TMP_SUFFIX if proto.renaming else pfn
            if _exists(proto, tmp):
                self.remove(tmp)
            before = signature(local)
            if before != (size, mtime_ns):
                raise _changed(local, before)
            self._put(proto, local, tmp)
            after = signature(local)
            if after != before:
                self.remove(tmp)
                raise _changed(local, after)
            verified = self._check(proto, tmp, size, adler32)
            if not verified:
                self.remove(tmp)
                raise ServiceUnavailable(
                    f"The copy of {os.path.basename(local)} on {self.rse} does not match the "
                    "local file (size or adler32 differ); nothing was registered."
                )
            if tmp != pfn:
                proto.rename(tmp, pfn)
            return Stored(pfn, verified)
        finally:
            proto.close()

    def _put(self, proto, local: str, target: str, attempts: int = 3) -> None:
        last: Exception | None = None
        for _ in range(attempts):
            try:
                proto.put(os.path.basename(local), target, os.path.dirname(local))
                return
            except rx.SourceNotFound:
                raise _changed(local, None) from None
            except (rx.DestinationNotAccessible, rx.ServiceUnavailable, rx.RSEAccessDenied, OSError) as exc:
                # posix put races on makedirs when two copies create one hash directory: just retry
                last = exc
        raise ServiceUnavailable(f"Could not write to {self.rse}: {_short(last)}")

    def _check(self, proto, pfn: str, size: int, adler32: str) -> str | None:
        """What matched ("adler32"/"size") or None on a mismatch."""
        try:
            stats = _stat(proto, pfn)
        except rx.RSEOperationNotSupported:
            return "none"
        if "filesize" in stats and int(stats["filesize"]) != int(size):
            return None
        if self.settings.get("verify_checksum", True) is not False and stats.get("adler32"):
            return "adler32" if same_adler(str(stats["adler32"]), adler32) else None
        return "size"

    def remove_copies(self, pfn: str) -> int:
        """Remove a verified copy this job made, and its temporary copy if one is left; count removed."""
        return self.remove(pfn + TMP_SUFFIX) + self.remove(pfn)

    def remove_if_ours(self, pfn: str, size: int, adler32: str | None) -> int:
        """Remove the temporary copy, and the final PFN if it holds exactly our bytes; count removed."""
        removed = int(self.remove(pfn + TMP_SUFFIX))
        if adler32 is None:
            return removed
        proto = self._protocol("write")
        proto.connect()
        try:
            ours = _exists(proto, pfn) and self._check(proto, pfn, size, adler32) == "adler32"
        finally:
            proto.close()
        return removed + int(ours and self.remove(pfn))

    def remove(self, pfn: str) -> bool:
        """Delete a PFN we wrote; False if it was not there."""
        proto = self._protocol("delete")
        proto.connect()
        try:
            proto.delete(pfn)
            return True
        except rx.SourceNotFound:
            return False
        finally:
            proto.close()

    def exists(self, pfn: str) -> bool:
        proto = self._protocol("write")
        proto.connect()
        try:
            return _exists(proto, pfn)
        finally:
            proto.close()


def same_adler(a: str | None, b: str | None) -> bool:
    # Rucio stores adler32 with or without leading zeros depending on the client that wrote it.
    return a is not None and b is not None and a.lower().lstrip("0") == b.lower().lstrip("0")


def _stat(proto, pfn: str) -> dict[str, Any]:
    """The protocol's stat (size, adler32 where it reports one); for a posix RSE the same
    answer computed with zlib-ng, ~5x faster than rucio-clients' system-zlib adler32."""
    if type(proto).stat is not posix.Default.stat:
        return proto.stat(pfn)
    path = proto.pfn2path(pfn)
    return {"filesize": os.stat(path).st_size, "adler32": file_adler32(path)}


def _exists(proto, pfn: str) -> bool:
    try:
        return bool(proto.exists(pfn))
    except rx.SourceNotFound:
        return False


def _changed(local: str, now: tuple[int, int] | None) -> FileChanged:
    name = os.path.basename(local)
    if now is None:
        return FileChanged(f"{name} vanished while it was being published. Nothing was registered in Rucio for it.")
    return FileChanged(
        f"{name} changed while it was being published (its size or modification time moved). "
        "Publish it again once it is complete."
    )


def _short(exc: BaseException | None) -> str:
    text = str(exc or "").strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:300]
