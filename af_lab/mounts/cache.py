"""The shared, content-addressed file cache: one verified copy per Rucio file.

A Rucio file DID is immutable (its bytes and adler32 never change), so
``scope:name`` is a content key; the adler32 is part of the file name as well,
so a catalogue that ever disagreed with what is on disk could never be served
from a stale copy. Layout::

    <cache_dir>/objects/<h[:2]>/<h>.<adler32>   verified files (h = sha256 of "scope:name")
    <cache_dir>/incoming/                        partial downloads, renamed into objects/
                                                 only after size and adler32 matched
    <cache_dir>/views/<v[:2]>/<v>/               read-only trees of links to objects, one per
                                                 distinct file listing (v = its digest)

A multi-file mount is one symlink in the workspace to a view: mounting a DID
again costs one symlink whatever its size (a view is built once, with one link
per file), and a mounted dataset is read-only, as data should be.

Only what is in ``objects/`` and recorded in the store is ever linked. Eviction
is least-recently-used over the entries that no listed cache-mode mount refers
to, so a live mount never loses a file.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import hashlib
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..checksum import normalize_adler32
from ..paths import private_dir
from .store import Store


@dataclass
class Room:
    """What the cache can hold for a new mount."""

    quota: int
    used: int
    pinned: int  # used by listed mounts: never evicted
    reserved: int  # still to be fetched by running jobs
    disk_free: int

    @property
    def available(self) -> int:
        """Bytes a new mount may still fill: the quota minus what cannot be evicted, capped by the disk."""
        by_quota = self.quota - self.pinned - self.reserved
        evictable = self.used - self.pinned
        return max(0, min(by_quota, self.disk_free + evictable - self.reserved))


FREE_SPACE_TTL = 0.5  # seconds a free-disk reading is reused by fits()


class Cache:
    def __init__(self, root: Path, store: Store, quota_bytes: int = 0):
        self.root = root
        self.objects = root / "objects"
        self.incoming = root / "incoming"
        self.views = root / "views"
        self._objects = str(self.objects)
        private_dir(root)  # cached data is the user's alone, like the files it came from
        for d in (self.objects, self.incoming, self.views):
            private_dir(d)
        self.store = store
        # Partial downloads of a dead process are garbage (jobs restart a file from 0); another
        # live server sharing this cache directory keeps its own.
        for leftover in self.incoming.iterdir():
            pid = leftover.name.split(".")[0]
            if not (pid.isdigit() and _alive(int(pid))):
                leftover.unlink(missing_ok=True)
        self._made_dirs: set[str] = set()
        self._free_seen = (0.0, 0)  # (monotonic time, bytes free): fits() is asked once per file
        self.reserved = 0  # bytes promised to running jobs (in memory: jobs re-reserve on resume)
        # The cache index in memory ((scope, name) -> [adler32, bytes, last_used]), written through
        # to the store: a warm mount of 1,000 files looks them up without one SQL statement.
        self._index: dict[tuple[str, str], list] = {
            (r["scope"], r["name"]): [r["adler32"], r["bytes"], r["last_used"]] for r in self.store.cache_rows()
        }
        self.used = sum(e[1] for e in self._index.values())
        if quota_bytes <= 0:
            # "90% of the free disk at start", counted on top of what the cache already holds:
            # otherwise a restart with a full cache would shrink the quota and evict everything.
            quota_bytes = self.used + int(shutil.disk_usage(root).free * 0.9)
        self.quota = quota_bytes

    # ------------------------------------------------------------------ paths
    def path(self, scope: str, name: str, adler32: str | None) -> Path:
        return Path(self._path(scope, name, adler32))

    def _path(self, scope: str, name: str, adler32: str | None) -> str:
        # Strings, not pathlib: a warm mount of 1,000 files computes 1,000 of these.
        h = hashlib.sha256(f"{scope}:{name}".encode()).hexdigest()
        return f"{self._objects}/{h[:2]}/{h}.{adler32 or 'nochecksum'}"

    def incoming_path(self, scope: str, name: str) -> Path:
        h = hashlib.sha256(f"{scope}:{name}".encode()).hexdigest()
        return self.incoming / f"{os.getpid()}.{h[:16]}.{secrets.token_hex(4)}.part"

    def owns(self, path: str | os.PathLike) -> bool:
        return Path(path).is_relative_to(self.root)

    # ------------------------------------------------------------------ views
    def view(self, links: list[tuple[str, str]]) -> Path:
        """The read-only directory holding ``links`` ((relative path, target) pairs); built once."""
        digest = hashlib.sha256("\n".join(f"{rel}\0{dest}" for rel, dest in links).encode()).hexdigest()[:40]
        path = self.views / digest[:2] / digest
        if path.is_dir():
            return path
        path.parent.mkdir(exist_ok=True, mode=0o700)
        staging = self.views / f".staging-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            staging.mkdir()
            made: set[str] = set()
            for rel, dest in links:
                parent = os.path.dirname(rel)
                if parent and parent not in made:
                    os.makedirs(staging / parent, exist_ok=True)
                    made.add(parent)
                os.symlink(dest, staging / rel)
            for dirpath, _dirs, _files in os.walk(staging, topdown=False):
                os.chmod(dirpath, 0o555)
            try:
                os.rename(staging, path)
            except OSError:
                if not path.is_dir():  # another server built the same view meanwhile: use theirs
                    raise
                _remove_tree(staging)
            else:
                for dirpath, _dirs, _files in os.walk(path):
                    _immutable(dirpath, True)
        except BaseException:
            _remove_tree(staging)
            raise
        return path

    def drop_unused_views(self, in_use: set[str]) -> None:
        """Remove views no listed mount links to (they are cheap to rebuild; eviction may have
        left their links dangling). Anything but our links and folders is left where it is."""
        for bucket in self.views.iterdir():
            if bucket.name.startswith(".staging-"):
                pid = bucket.name.split("-")[1]
                if not (pid.isdigit() and _alive(int(pid))):
                    _remove_tree(bucket)
                continue
            for view in bucket.iterdir():
                if str(view) not in in_use:
                    _remove_tree(view)

    # ------------------------------------------------------------------ lookups
    def present(self, files: list[dict[str, Any]], touch: bool = False) -> dict[tuple[str, str], str]:
        """The files of ``files`` that are in the cache, verified earlier, with their path.

        The index says what was verified; one ``stat`` per file catches a copy that was
        removed or truncated behind our back (such an entry is dropped and refetched).
        ``touch`` marks them used (LRU, to the minute: re-mounting writes nothing).
        """
        out: dict[tuple[str, str], str] = {}
        gone, stale = [], []
        now = time.time()
        for f in files:
            key = (f["scope"], f["name"])
            entry = self._index.get(key)
            if entry is None:
                continue
            path = self._valid_path(key, entry, f.get("adler32"))
            if path is None:
                gone.append(key)
                continue
            out[key] = path
            if touch and entry[2] < now - 60:
                entry[2] = now
                stale.append(key)
        if stale:
            self.store.touch_cache(stale, now)
        if gone:
            self._forget(gone)
        return out

    def lookup(self, f: dict[str, Any]) -> str | None:
        """One file's cached path, or None (the per-file check of a running job)."""
        key = (f["scope"], f["name"])
        entry = self._index.get(key)
        if entry is None:
            return None
        path = self._valid_path(key, entry, f.get("adler32"))
        if path is None:
            self._forget([key])
        return path

    def _valid_path(self, key: tuple[str, str], entry: list, adler32: str | None) -> str | None:
        if adler32 and normalize_adler32(adler32) != normalize_adler32(entry[0]):
            return None
        path = self._path(*key, entry[0])
        try:
            return path if os.stat(path).st_size == entry[1] else None
        except OSError:
            return None

    def _forget(self, keys: list[tuple[str, str]]) -> None:
        for key in keys:
            entry = self._index.pop(key, None)
            if entry:
                self.used -= entry[1]
        self.store.drop_cache_entries(keys)

    def room(self) -> Room:
        return Room(
            quota=self.quota,
            used=self.used,
            pinned=self.store.pinned_bytes(),
            reserved=self.reserved,
            disk_free=shutil.disk_usage(self.root).free,
        )

    def disk_bytes(self) -> int:
        """Bytes the cache holds: verified files plus partial downloads (any thread may ask)."""
        partial = 0
        with os.scandir(self.incoming) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    partial += entry.stat(follow_symlinks=False).st_size
        return self.used + partial

    def usage(self) -> dict[str, Any]:
        room = self.room()
        return {
            "path": str(self.root),
            "quota_bytes": room.quota,
            "used_bytes": room.used,
            "pinned_bytes": room.pinned,
            "evictable_bytes": room.used - room.pinned,
            "reserved_bytes": room.reserved,
            "available_bytes": room.available,
            "disk_free_bytes": room.disk_free,
            "files": len(self._index),
            **{k: v for k, v in self.store.counters().items()},
        }

    # ------------------------------------------------------------------ changes
    def commit(self, tmp: Path, scope: str, name: str, adler32: str, nbytes: int) -> Path:
        """Move a verified download into place (atomic rename on the same filesystem)."""
        final = self.path(scope, name, adler32)
        if final.parent.name not in self._made_dirs:  # 256 fan-out dirs: mkdir once each, not per file
            final.parent.mkdir(exist_ok=True, mode=0o700)
            self._made_dirs.add(final.parent.name)
        try:
            os.replace(tmp, final)
        except FileNotFoundError:  # the fan-out dir was removed behind our back
            final.parent.mkdir(exist_ok=True, mode=0o700)
            os.replace(tmp, final)
        self.store.add_cache_entry(scope, name, adler32, nbytes)
        old = self._index.get((scope, name))
        self.used += nbytes - (old[1] if old else 0)
        self._index[(scope, name)] = [adler32, nbytes, time.time()]
        return final

    def make_room(self, nbytes: int) -> int:
        """Evict unpinned entries, oldest use first, until ``nbytes`` more fit in the quota
        and on the disk. Returns the bytes freed; the caller checks whether it sufficed."""
        over_quota = self.used + self.reserved + nbytes - self.quota
        short_on_disk = nbytes - shutil.disk_usage(self.root).free
        need = max(over_quota, short_on_disk)
        freed = 0
        if need <= 0:
            return 0
        victims = []
        for entry in self.store.eviction_candidates():
            if freed >= need:
                break
            path = self.path(entry["scope"], entry["name"], entry["adler32"])
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            victims.append((entry["scope"], entry["name"]))
            freed += entry["bytes"]
        if victims:
            self._forget(victims)
            self.store.bump(files_evicted=len(victims), bytes_evicted=freed)
            self.drop_unused_views({m["options"].get("view") for m in self.store.mounts()} - {None})
        return freed

    def fits(self, nbytes: int) -> bool:
        """Cheap (no pinning query): asked before every file a job fetches."""
        if self.used + self.reserved + nbytes > self.quota:
            return False
        seen_at, free = self._free_seen
        # A free-space figure a moment old is good enough unless this file would come close to it.
        if time.monotonic() - seen_at > FREE_SPACE_TTL or nbytes * 4 > free:
            free = shutil.disk_usage(self.root).free
            self._free_seen = (time.monotonic(), free)
        return nbytes <= free


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a previous server with our PID recycled: its leftovers are not ours
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_tree(path: Path) -> None:
    """Remove a view or staging tree: symlinks and the folders they leave empty, nothing else."""
    if not path.exists() and not path.is_symlink():
        return
    for dirpath, _dirs, _files in os.walk(path):  # parents first: a folder is emptied once it is mutable
        _immutable(dirpath, False)
    for dirpath, dirnames, filenames in os.walk(path, topdown=False):
        os.chmod(dirpath, 0o700)
        for name in filenames + dirnames:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                os.unlink(p)
        try:
            os.rmdir(dirpath)
        except OSError:
            pass  # something that is not ours is in there: leave it


# Linux's immutable attribute (``chattr +i``): 0555 stops the user, but a server running as
# root ignores modes; an immutable folder refuses new, renamed or removed entries even to
# root. Setting it needs CAP_LINUX_IMMUTABLE and a filesystem that has it (ext4, xfs, btrfs);
# elsewhere the view is read-only by its mode only.
_FS_IOC_GETFLAGS, _FS_IOC_SETFLAGS, _FS_IMMUTABLE_FL = 0x80086601, 0x40086602, 0x00000010


def _immutable(path: str | os.PathLike, on: bool) -> bool:
    if on and os.geteuid() != 0:
        return False  # only root both needs it and may set it
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        flags = array.array("l", [0])
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, flags, True)
        if bool(flags[0] & _FS_IMMUTABLE_FL) == on:
            return on
        flags[0] = flags[0] | _FS_IMMUTABLE_FL if on else flags[0] & ~_FS_IMMUTABLE_FL
        fcntl.ioctl(fd, _FS_IOC_SETFLAGS, flags)
        return on
    except OSError:  # EPERM without the capability, ENOTTY/EOPNOTSUPP on tmpfs, overlayfs, NFS
        return False
    finally:
        os.close(fd)
