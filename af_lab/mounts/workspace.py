"""What a mount puts in the user's workspace, and how it is taken out again.

Rules:
  * a target is a path relative to the workspace root and stays inside it, also
    after following any symlinked parent ('../../etc' and symlink escapes refused);
  * a mount appears at once or not at all: its one symlink (to a file, or to a
    read-only view of links in the cache) is made under a hidden name and renamed;
  * unmount removes only what a mount made (links into the cache or to replicas,
    its fileset file while unchanged, folders left empty) and never a user's file.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from ..errors import Conflict
from ..paths import resolve_inside

STAGING_MARK = ".af-mount-staging-"


def resolve_target(root_dir: str | os.PathLike, target: str) -> tuple[str, Path]:
    """(workspace-relative posix path, absolute path) of a mount target, or BadRequest.

    Length, depth, characters and every link on the way are checked by
    :func:`af_lab.paths.resolve_inside` before anything is created.
    """
    absolute = resolve_inside(root_dir, target, "target", allow_absolute=True, follow_last=False)
    root = Path(root_dir).resolve()
    return absolute.relative_to(root).as_posix(), absolute


def check_free(absolute: Path, rel: str) -> None:
    if os.path.lexists(absolute):
        raise Conflict(
            f"{rel} already exists in your workspace and is not an af-lab mount; choose another target "
            "or move it away (af-lab never overwrites your files)",
            field="target",
        )


def publish_symlink(absolute: Path, dest: str | os.PathLike) -> None:
    """Make ``absolute`` a symlink to ``dest``, atomically and never over an existing entry."""
    absolute.parent.mkdir(parents=True, exist_ok=True)
    staging = absolute.parent / f"{STAGING_MARK}{secrets.token_hex(6)}"
    os.symlink(dest, staging)
    try:
        if os.path.lexists(absolute):
            raise Conflict(f"{absolute.name} appeared in your workspace while the mount was being built; not replacing it")
        os.rename(staging, absolute)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


def write_atomic(absolute: Path, data: bytes) -> str:
    """Write a file via a hidden temp name + rename; returns its sha256 (to recognise it at unmount)."""
    absolute.parent.mkdir(parents=True, exist_ok=True)
    tmp = absolute.parent / f"{STAGING_MARK}{secrets.token_hex(6)}"
    try:
        with open(tmp, "xb") as f:
            f.write(data)
        os.replace(tmp, absolute)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return hashlib.sha256(data).hexdigest()


def remove_mount(
    root_dir: str | os.PathLike,
    absolute: Path,
    ours: Callable[[str], bool],
    fileset_sha256: str | None = None,
) -> list[str]:
    """Remove what a mount made at ``absolute``; returns the workspace paths kept.

    ``ours(link_target)`` says whether a symlink points where this mount put it. A
    real folder at the target (not made by this version) is emptied of our links only.
    """
    root = Path(root_dir).resolve()
    kept: list[str] = []

    def rel(p: Path) -> str:
        return p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p)

    if fileset_sha256 is not None:
        if absolute.is_file() and not absolute.is_symlink():
            if hashlib.sha256(absolute.read_bytes()).hexdigest() == fileset_sha256:
                absolute.unlink()
            else:
                kept.append(rel(absolute))  # the user edited it: it is theirs now
        return kept
    if absolute.is_symlink():
        if ours(os.readlink(absolute)):
            absolute.unlink()
        else:
            kept.append(rel(absolute))
        return kept
    if not absolute.is_dir():
        return kept
    for dirpath, dirnames, filenames in os.walk(absolute, topdown=False):
        d = Path(dirpath)
        for name in filenames + [n for n in dirnames if (d / n).is_symlink()]:
            p = d / name
            if p.is_symlink() and ours(os.readlink(p)):
                p.unlink()
            else:
                kept.append(rel(p))
        try:
            d.rmdir()
        except OSError:
            pass  # not empty: it holds something of the user's
    return sorted(kept)


def prune_empty_parents(absolute: Path, stop: Path) -> None:
    """Remove empty folders above a removed mount, up to (not including) ``stop``."""
    parent = absolute.parent
    while parent != stop and parent.is_relative_to(stop):
        try:
            parent.rmdir()
        except OSError:
            return
        parent = parent.parent


def cleanup_staging(directory: Path) -> None:
    """Remove staging leftovers of a crashed publish under ``directory``."""
    if not directory.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(directory):
        for name in list(dirnames) + filenames:
            if name.startswith(STAGING_MARK):
                _remove_staging(Path(dirpath) / name)
                if name in dirnames:
                    dirnames.remove(name)


def _remove_staging(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
