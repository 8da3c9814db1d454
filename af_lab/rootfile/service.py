"""What a ROOT file in the workspace holds: its trees with their entries and branches.

JupyterLab's file browser opens an unknown binary file as text ("not UTF-8"); af-lab's
viewer asks this service instead. The header is read with uproot when the server's
environment has it (an optional dependency: the dev extra, or a site that installs it);
without it the answer says so and the viewer offers code to open the file in a kernel.

Paths are workspace paths, checked by :func:`af_lab.paths.resolve_inside`. A mounted file
is a link into af-lab's cache (or to a replica on an RSE mounted on this host), outside
the workspace: such a link is followed only into those folders.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import AFLabError, BadRequest, NotFound
from ..paths import check_path_text, resolve_inside

MAX_BRANCHES = 2000  # per tree; a NanoAOD tree has ~1,500
MAX_OBJECTS = 500
# What holds events: the classic TTree (NanoAOD) and its successor RNTuple (uproot writes those by default).
TREE_CLASSES = {"TTree": "TTree", "TNtuple": "TTree", "TNtupleD": "TTree", "ROOT::RNTuple": "RNTuple"}


class RootFileService:
    def __init__(self, root_dir: str | os.PathLike, linked_dirs: list[str | os.PathLike]):
        """``linked_dirs``: folders outside the workspace a mount's links may lead into (the cache, RSE roots)."""
        self.root_dir = Path(root_dir).resolve()
        self.linked_dirs = [Path(d).resolve() for d in linked_dirs if d]

    async def contents(self, path: Any) -> dict[str, Any]:
        rel, absolute = self._resolve(path)
        if not absolute.is_file():
            raise NotFound(f"{rel} is not a file in the workspace", field="path")
        if absolute.suffix.lower() != ".root":
            raise BadRequest(f"{rel} is not a ROOT file (.root)", field="path", rule="a .root file")
        return await asyncio.to_thread(read_header, absolute, rel)

    def _resolve(self, path: Any) -> tuple[str, Path]:
        text = check_path_text(path, "path")
        try:
            absolute = resolve_inside(self.root_dir, text, "path", allow_absolute=True)
        except BadRequest as exc:
            if exc.details.get("rule") != "inside the workspace" or PurePosixPath(text).is_absolute():
                raise
            # A mount's link: lexically in the workspace ('..' is refused above), resolving into
            # af-lab's cache or an RSE root this host mounts; nowhere else.
            lexical = self.root_dir.joinpath(*[p for p in PurePosixPath(text).parts if p not in ("", ".")])
            absolute = lexical.resolve()
            if not any(absolute.is_relative_to(d) for d in self.linked_dirs):
                raise
        rel = Path(os.path.normpath(text)).as_posix().lstrip("/")
        return rel, absolute


def read_header(path: Path, rel: str) -> dict[str, Any]:
    """Trees (entries, branches with their types) and the other objects' classes, read with uproot."""
    out: dict[str, Any] = {"path": rel, "bytes": path.stat().st_size, "trees": [], "objects": [], "reader": None}
    try:
        import uproot
    except ImportError:
        out["message"] = "The server cannot read ROOT files (uproot is not installed there); open it in a kernel."
        return out
    out["reader"] = f"uproot {uproot.__version__}"
    try:
        with uproot.open(path) as f:
            classes = f.classnames(recursive=True)
            for key, cls in list(classes.items())[:MAX_OBJECTS]:
                name = key.rsplit(";", 1)[0]
                if cls in TREE_CLASSES:
                    tree = f[key]
                    types = tree.typenames(recursive=True)
                    branches = [{"name": b, "type": t} for b, t in list(types.items())[:MAX_BRANCHES]]
                    out["trees"].append(
                        {
                            "name": name,
                            "kind": TREE_CLASSES[cls],
                            "entries": int(tree.num_entries),
                            "branches": branches,
                            "truncated": len(types) > MAX_BRANCHES,
                        }
                    )
                else:
                    out["objects"].append({"name": name, "class": cls})
            out["truncated"] = len(classes) > MAX_OBJECTS
    except AFLabError:
        raise
    except Exception as exc:  # a damaged or non-ROOT file: say so, never a traceback
        raise BadRequest(
            f"{rel} could not be read as a ROOT file ({type(exc).__name__})", field="path", rule="a readable ROOT file"
        ) from None
    return out
