"""adler32 (Rucio's checksum) of a file at memory speed, for Publish's local files and its RSE copies.

zlib-ng's adler32 is SIMD (~5x the system zlib here) and, like zlib's, releases the GIL on
large buffers, so several files hash in parallel threads. Files are read with ``readinto``
into one reused buffer, not ``mmap``ed: these are the user's files (or copies of them), and a
file truncated under a mapping would kill the server with SIGBUS.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

try:  # an install requirement; the system zlib is the fallback
    from zlib_ng.zlib_ng import adler32
except ImportError:  # pragma: no cover
    from zlib import adler32


def adler32_hex(value: int) -> str:
    """Rucio's form of an adler32: 8 lower-case hex digits."""
    return f"{value & 0xFFFFFFFF:08x}"


def normalize_adler32(value: str | None) -> str | None:
    """Rucio stores adler32 as hex without leading zeros sometimes; compare zero-padded."""
    return value.lower().zfill(8) if value else None


CHUNK = 1 << 20  # per read; measured: 256 KiB-8 MiB all run at page-cache speed, smaller keeps memory low


def file_checksums(
    path: str | os.PathLike, progress: Callable[[int], None] | None = None, with_md5: bool = False
) -> tuple[str, str | None, int]:
    """(adler32 in Rucio's 8-hex form, md5 hex or None, bytes read), in one read of the file."""
    adler, md5, size = 1, hashlib.md5() if with_md5 else None, 0
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            chunk = view[:n]
            adler = adler32(chunk, adler)
            if md5 is not None:
                md5.update(chunk)
            size += n
            if progress is not None:
                progress(n)
    return adler32_hex(adler), md5.hexdigest() if md5 is not None else None, size


def file_adler32(path: str | os.PathLike) -> str:
    return file_checksums(path)[0]
