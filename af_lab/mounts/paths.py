"""Where each file of a mount appears below its target: one distinct path per file (pure).

The mapping, decided from the listing before anything is fetched:

1. A file's path is its Rucio name as a relative path: empty segments and a leading '/'
   dropped (``/store/x.root`` -> ``store/x.root``); a container adds one folder per dataset.
2. Two files with the same path (``x.root`` and ``/x.root``): the one listed first in
   name order keeps it, the others get ``~2``, ``~3``... before the extension
   (``x~2.root``).
3. A file whose path is also a folder of other files (``/a`` and ``/a/b.root``): the
   folder keeps the name, the file gets the suffix (``a~2``).

A suffixed path never takes a path or folder another file has. The mount's file list
(``GET /af-lab/mounts/<id>/files``) shows each file's Rucio name next to its path.
"""

from __future__ import annotations

from typing import Any


def distinct(files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of ``files`` whose ``path`` values are all distinct and none is another's folder."""
    folders: set[str] = set()
    for f in files:
        parts = f["path"].split("/")
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
    taken: set[str] = set()
    out: list[dict[str, Any]] = [None] * len(files)  # type: ignore[list-item]
    clashes: list[int] = []
    for i in sorted(range(len(files)), key=lambda i: (files[i]["path"], files[i]["name"])):
        path = files[i]["path"]
        if path in taken or path in folders:
            clashes.append(i)
        else:
            taken.add(path)
            out[i] = files[i]
    for i in clashes:
        out[i] = {**files[i], "path": _free(files[i]["path"], taken, folders)}
        taken.add(out[i]["path"])
    return out


def _free(path: str, taken: set[str], folders: set[str]) -> str:
    head, _, leaf = path.rpartition("/")
    stem, dot, ext = leaf.rpartition(".") if "." in leaf.lstrip(".") else (leaf, "", "")
    n = 2
    while True:
        candidate = f"{head}/" * bool(head) + f"{stem}~{n}{dot}{ext}"
        if candidate not in taken and candidate not in folders:
            return candidate
        n += 1
