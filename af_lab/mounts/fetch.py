"""Copy one replica into a temporary cache file and verify it: blocking code, run in threads.

Two transports:
  * ``file://`` (a posix RSE readable on this host): ``copy_file_range`` copies in
    the kernel (no user-space buffer, as ``cp`` does), then the destination is
    checksummed through a read-only ``mmap``, so what is verified is exactly what
    will be linked.
  * ``root://`` (an XRootD server or the site XCache): sequential reads through the
    XRootD client, checksummed as they are written. The bearer token, when there is
    one, travels as the ``authz`` CGI of this one request, never in the environment.

Each call reports progress through ``progress(nbytes)`` and stops between chunks
when ``cancel`` is set. A failed or cancelled copy leaves no file behind.
"""

from __future__ import annotations

import errno
import mmap
import os
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlsplit

# zlib-ng's adler32 is SIMD (~6 GB/s here, 7x the system zlib): it keeps verification off the critical path
from ..checksum import adler32, adler32_hex, normalize_adler32

CHUNK = 32 << 20  # copy_file_range step: small enough to cancel promptly and report progress
READ_CHUNK = 1 << 20  # XRootD read size: one XCache block per request...
READ_DEPTH = 8  # ...and this many requests in flight, so round trips overlap with writing
XROOTD_TIMEOUT = 30  # seconds per XRootD request (open, read): a dead cache fails, it does not hang
# The XRootD client's defaults reconnect to a dead server for minutes (5 tries x 120 s). A mount has
# other replicas to try and a retry button, so fail within seconds. After a failure the client also
# refuses the same server for StreamErrorWindow (1800 s) without trying: an XCache that came back would
# be reported down by the status probe and refused for stream filesets for half an hour. XRD_* variables
# still win. Set once per process, before the client's first use (every XRootD call here goes through it).
XROOTD_CLIENT_ENV = {"ConnectionWindow": 5, "ConnectionRetry": 2, "StreamErrorWindow": 0}
_xrootd_env_done = False


class FetchError(Exception):
    """A source could not deliver the file; another replica may still work."""

    def __init__(self, message: str, kind: str = "source"):
        super().__init__(message)
        self.kind = kind


class ChecksumMismatch(FetchError):
    def __init__(self, message: str):
        super().__init__(message, kind="checksum")


class DiskFull(Exception):
    """The cache filesystem is full: no other replica helps, the mount stops."""


class Cancelled(Exception):
    pass


def fetch(
    url: str,
    dest: Path,
    *,
    expected_bytes: int,
    expected_adler32: str | None,
    progress: Callable[[int], None],
    cancel: threading.Event,
    token: str | None = None,
) -> str:
    """Copy ``url`` to ``dest`` (a new file) and verify it. Returns the adler32 (hex)."""
    scheme = urlsplit(url).scheme
    try:
        if scheme == "file":
            checksum = _copy_posix(local_path(url), dest, expected_bytes, progress, cancel)
        elif scheme in ("root", "xroot"):
            checksum = _copy_xrootd(url, dest, expected_bytes, progress, cancel, token)
        else:
            raise FetchError(f"no transport for {scheme}:// replicas", kind="unsupported")
        size = dest.stat().st_size
        if size != expected_bytes:
            raise ChecksumMismatch(f"size mismatch: Rucio says {expected_bytes} bytes, got {size}")
        expected = normalize_adler32(expected_adler32)
        if expected and checksum != expected:
            raise ChecksumMismatch(f"adler32 mismatch: Rucio says {expected}, got {checksum}")
        return checksum
    except OSError as exc:
        dest.unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(f"the cache disk is full ({os.strerror(exc.errno)})") from None
        raise FetchError(f"{exc.strerror or exc}", kind="io") from None
    except BaseException:
        dest.unlink(missing_ok=True)
        raise


def local_path(url: str) -> str:
    """The filesystem path of a ``file://`` PFN (Rucio writes file://localhost/abs/path)."""
    parts = urlsplit(url)
    return parts.path


# ---------------------------------------------------------------------- posix
def _copy_posix(src: str, dest: Path, expected: int, progress, cancel: threading.Event) -> str:
    try:
        fin = os.open(src, os.O_RDONLY)
    except FileNotFoundError:
        raise FetchError(f"replica file {src} does not exist", kind="not_found") from None
    except PermissionError:
        raise FetchError(f"replica file {src} is not readable", kind="denied") from None
    try:
        fout = os.open(dest, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            size = os.fstat(fin).st_size
            if size != expected:  # do not copy a gigabyte to learn what stat already says
                raise ChecksumMismatch(f"size mismatch: Rucio says {expected} bytes, the replica has {size}")
            done = 0
            use_cfr = True
            while done < size:
                if cancel.is_set():
                    raise Cancelled()
                step = min(CHUNK, size - done)
                if use_cfr:
                    try:
                        n = os.copy_file_range(fin, fout, step)
                    except OSError as exc:
                        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                            raise
                        use_cfr = False  # e.g. across filesystems on old kernels: plain reads
                        continue
                else:
                    n = os.sendfile(fout, fin, done, step)
                if n == 0:
                    break  # source shrank under us: the size check reports it
                done += n
                progress(n)
            if done == 0:
                return adler32_hex(adler32(b""))
            # MAP_POPULATE maps the just-written pages in one call instead of one fault per 4 KiB.
            flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
            with mmap.mmap(fout, 0, flags=flags, prot=mmap.PROT_READ) as view:
                return adler32_hex(adler32(view))
        finally:
            os.close(fout)
    finally:
        os.close(fin)


# ---------------------------------------------------------------------- xrootd
def with_token(url: str, token: str | None) -> str:
    """``url`` with the bearer token as ``authz`` CGI (how XRootD's token plugins take it)."""
    if not token:
        return url
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}authz={quote('Bearer ' + token, safe='')}"


def redact(url: str) -> str:
    """A URL without its query (never show or store a token)."""
    return url.split("?", 1)[0]


def _copy_xrootd(url: str, dest: Path, expected: int, progress, cancel: threading.Event, token: str | None) -> str:
    """Pipelined reads (``READ_DEPTH`` requests in flight) written and checksummed in order."""
    try:
        from XRootD import client as xrd
        from XRootD.client.flags import OpenFlags
    except ImportError:
        raise FetchError("the XRootD Python client is not installed (pip install xrootd)", kind="unsupported") from None

    configure_xrootd_client(xrd)
    where = redact(url)
    f = xrd.File()
    status, _ = f.open(with_token(url, token), OpenFlags.READ, timeout=XROOTD_TIMEOUT)
    if not status.ok:
        raise FetchError(_xrd_message(status, where), kind=_xrd_kind(status))
    try:
        status, info = f.stat(timeout=XROOTD_TIMEOUT)
        if not status.ok:
            raise FetchError(_xrd_message(status, where), kind=_xrd_kind(status))
        if info.size != expected:  # do not transfer a gigabyte to learn what stat already says
            raise ChecksumMismatch(f"size mismatch: Rucio says {expected} bytes, the replica has {info.size}")
        inflight: deque[tuple[threading.Event, list]] = deque()
        next_offset = 0

        def submit() -> None:
            nonlocal next_offset
            done, box = threading.Event(), []

            def arrived(status, response, hosts=None) -> None:
                box.extend((status, response))
                done.set()

            status = f.read(next_offset, READ_CHUNK, timeout=XROOTD_TIMEOUT, callback=arrived)
            if not status.ok:
                raise FetchError(_xrd_message(status, where), kind=_xrd_kind(status))
            inflight.append((done, box))
            next_offset += READ_CHUNK

        fout = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            checksum = 1
            while next_offset < expected and len(inflight) < READ_DEPTH:
                submit()
            while inflight:
                done, box = inflight.popleft()
                while not done.wait(0.2):
                    if cancel.is_set():
                        raise Cancelled()
                status, data = box
                if not status.ok:
                    raise FetchError(_xrd_message(status, where), kind=_xrd_kind(status))
                if next_offset < expected:
                    submit()  # keep the pipe full before the CPU work on this chunk
                checksum = adler32(data, checksum)
                view = memoryview(data)
                while view:
                    written = os.write(fout, view)
                    view = view[written:]
                progress(len(data))
                if cancel.is_set():
                    raise Cancelled()
            return adler32_hex(checksum)
        finally:
            os.close(fout)
    finally:
        f.close(timeout=5)


def configure_xrootd_client(xrd) -> None:
    global _xrootd_env_done
    if _xrootd_env_done:
        return
    for key, value in XROOTD_CLIENT_ENV.items():
        if f"XRD_{key.upper()}" not in os.environ:
            xrd.EnvPutInt(key, value)
    _xrootd_env_done = True


def _xrd_kind(status) -> str:
    if status.code != 400:  # not an answer from the server: connection refused, timed out, reset
        return "unreachable"
    if status.errno == 3011:  # kXR_NotFound
        return "not_found"
    if status.errno == 3010:  # kXR_NotAuthorized
        return "denied"
    return "source"


def _xrd_message(status, where: str) -> str:
    text = " ".join(status.message.split())
    if status.errno == 3011:
        return f"{where}: no such file on the server"
    if status.errno == 3010:
        return f"{where}: access denied ({text})"
    return f"{where}: {text}"


def xrootd_ping(url: str, timeout: float) -> tuple[bool, str]:
    """(answered, why not) for the XRootD server at ``url`` (e.g. the site XCache); blocking."""
    try:
        from XRootD import client as xrd
    except ImportError:
        return True, "the XRootD Python client is not installed here (not checked)"
    configure_xrootd_client(xrd)
    status, _ = xrd.FileSystem(url).ping(timeout=max(1, int(timeout)))
    return (True, "") if status.ok else (False, status.message.strip())
