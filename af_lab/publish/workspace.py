"""The local side of Publish: workspace paths, file walks, checksums, git and notebook facts.

Everything here is read-only on the user's files: Publish never deletes, moves or
rewrites them. Paths arrive relative to the Jupyter workspace root and must stay
inside it, symlinks included.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..checksum import file_checksums
from ..errors import BadRequest, NotFound
from ..paths import resolve_inside

# Not data: editor and Jupyter droppings that a folder publish would otherwise sweep up.
SKIPPED_NAMES = {".ipynb_checkpoints", "__pycache__", ".git", ".DS_Store"}


@dataclass
class LocalFile:
    rel: str  # workspace-relative, posix
    member: str  # path below the published folder (the file name for a single file)
    bytes: int
    mtime_ns: int
    folder: bool = False  # found by walking a selected folder (its DID name keeps the sub-path)


def _inside(root: Path, path: Path) -> bool:
    return path == root or root in path.parents


def resolve(root: str | os.PathLike, rel: object, field: str = "paths") -> Path:
    """The absolute path of a workspace-relative ``rel``; refuses anything that leaves the workspace
    (also through a link), and links that dangle or loop (:func:`af_lab.paths.resolve_inside`)."""
    return resolve_inside(root, rel, field)


def collect(root: str | os.PathLike, rels: Iterable[str], max_files: int) -> tuple[list[LocalFile], list[str]]:
    """Files to publish, walked from files and folders. Returns (files, skipped-notes).

    Folders are walked without following directory symlinks; hidden entries and
    Jupyter's checkpoints are skipped (and reported), since they are never results.
    """
    base = Path(root).resolve()
    files: list[LocalFile] = []
    skipped: list[str] = []
    seen: set[Path] = set()
    for rel in rels:
        path = resolve(base, rel)
        if not path.exists():
            raise NotFound(
                f"{rel} does not exist in the workspace (was it moved or deleted?).", field="paths", path=rel
            )
        if path.is_file():
            _add(files, seen, base, path, path.name)
        elif path.is_dir():
            before = len(files)
            for dirpath, dirnames, filenames in os.walk(path):
                here = Path(dirpath)
                for d in list(dirnames):
                    if d.startswith(".") or d in SKIPPED_NAMES or (here / d).is_symlink():
                        dirnames.remove(d)
                        skipped.append(_rel(base, here / d) + "/")
                dirnames.sort()
                for fname in sorted(filenames):
                    fpath = here / fname
                    if fname.startswith(".") or fname in SKIPPED_NAMES:
                        skipped.append(_rel(base, fpath))
                        continue
                    try:
                        real = fpath.resolve()
                    except (OSError, RuntimeError):  # a link that loops
                        skipped.append(_rel(base, fpath))
                        continue
                    if not _inside(base, real):
                        raise BadRequest(
                            f"{_rel(base, fpath)} is a link to a file outside the workspace; "
                            "copy the file into the workspace to publish it.",
                            field="paths",
                        )
                    if not real.is_file():
                        skipped.append(_rel(base, fpath))
                        continue
                    _add(files, seen, base, real, fpath.relative_to(path).as_posix(), shown=fpath, folder=True)
                    if len(files) > max_files:
                        raise BadRequest(
                            f"This selection holds more than {max_files:,} files. Publish it in parts, "
                            "or pack small files into archives first.",
                            field="paths",
                        )
            if len(files) == before:
                raise BadRequest(f"{rel} holds no files to publish.", field="paths", path=rel)
        else:
            raise BadRequest(f"{rel} is neither a file nor a folder.", field="paths", path=rel)
        if len(files) > max_files:
            raise BadRequest(f"This selection holds more than {max_files:,} files.", field="paths")
    return files, skipped


def _rel(base: Path, path: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


def _add(
    files: list[LocalFile],
    seen: set[Path],
    base: Path,
    real: Path,
    member: str,
    shown: Path | None = None,
    folder: bool = False,
):
    if real in seen:
        return  # the same file selected twice (a file and its folder): publish it once
    seen.add(real)
    st = real.stat()
    files.append(
        LocalFile(
            rel=_rel(base, shown or real), member=member, bytes=st.st_size, mtime_ns=st.st_mtime_ns, folder=folder
        )
    )


def checksums(
    path: str | os.PathLike, progress: Callable[[int], None] | None = None, with_md5: bool = False
) -> tuple[str, str | None, int]:
    """adler32 (Rucio's 8-hex form), md5 if asked and size, in one read of the file.

    md5 is optional: Rucio verifies with adler32, and md5 runs ~25x slower than zlib-ng's adler32.
    """
    return file_checksums(path, progress, with_md5)


# ---------------------------------------------------------------------------------- provenance facts


# af-lab's own checkout (when it runs from one): never the repository a user's work is in.
OWN_CHECKOUT = Path(__file__).resolve().parents[2]


async def git_commit(directory: str | os.PathLike) -> dict | None:
    """HEAD commit of the git repository holding ``directory`` and whether the tree has local changes.

    af-lab's own checkout never counts (a demo workspace inside it is not af-lab's work).
    A few ``git`` processes per publish job (not per file); None if git or a repository is absent.
    """
    git = shutil.which("git")
    if git is None or not Path(directory).is_dir():
        return None

    async def run(*args: str) -> str | None:
        try:
            proc = await asyncio.create_subprocess_exec(
                git,
                "-C",
                str(directory),
                *args,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},  # read-only: never take the index lock
            )
            out, _ = await asyncio.wait_for(proc.communicate(), 10)
        except (TimeoutError, OSError):
            return None
        return out.decode(errors="replace").strip() if proc.returncode == 0 else None

    top = await run("rev-parse", "--show-toplevel")
    if not top or Path(top).resolve() == OWN_CHECKOUT:
        return None
    commit = await run("rev-parse", "--verify", "HEAD")
    if not commit:
        return None
    status = await run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status)}


def notebook_inputs(root: str | os.PathLike, notebook_rel: str) -> list[str]:
    """Input DIDs recorded in a notebook's metadata by af-lab's mount/attach actions.

    Accepted shapes (``metadata["af-lab"]`` or ``metadata["af_lab"]``): ``inputs`` as a list
    of DID strings, or ``mounts``/``attachments`` as lists of ``{"did": ...}``.
    """
    try:
        path = resolve(root, notebook_rel, field="notebook")
        meta = json.loads(path.read_text()).get("metadata", {})
    except (OSError, ValueError, BadRequest, AttributeError):
        return []
    found: list[str] = []
    for key in ("af-lab", "af_lab"):
        section = meta.get(key)
        if not isinstance(section, dict):
            continue
        for item in section.get("inputs", []) or []:
            if isinstance(item, str):
                found.append(item)
        for listing in ("mounts", "attachments"):
            for item in section.get(listing, []) or []:
                if isinstance(item, dict) and isinstance(item.get("did"), str):
                    found.append(item["did"])
    return list(dict.fromkeys(found))
