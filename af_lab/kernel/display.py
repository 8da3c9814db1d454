"""Result objects of the client and the magics: plain lists and dicts that render as compact tables.

Each is a real ``list`` (of DID dicts, mount dicts, paths...) so code keeps working on it;
``_repr_html_`` and the plain-text repr show a table with at most ``MAX_ROWS`` rows.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from .. import units
from ..units import human_bytes

MAX_ROWS = 50
MAX_HTML_ROWS = 200


def _list(v: Any) -> str:
    return ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else ("" if v is None else str(v))


_count, _when = units.count, units.local_time


Column = tuple[str, Callable[[dict], str]]


class Table(list):
    """A list of dicts shown as a table. Subclasses set ``columns`` and ``noun``."""

    columns: list[Column] = []
    noun = "row"

    def __init__(self, items=(), title: str = "", **attrs: Any):
        super().__init__(items)
        self.title = title
        for k, v in attrs.items():
            setattr(self, k, v)

    def _cells(self, limit: int) -> tuple[list[str], list[list[str]]]:
        heads = [h for h, _ in self.columns]
        rows = [[str(fn(item)) for _, fn in self.columns] for item in self[:limit]]
        return heads, rows

    def _summary(self) -> str:
        n = len(self)
        return f"{n:,} {self.noun}{'' if n == 1 else 's'}" + (f" — {self.title}" if self.title else "")

    def _text(self) -> str:
        heads, rows = self._cells(MAX_ROWS)
        if not rows:
            return self._summary()
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
        line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()  # noqa: E731
        out = [self._summary(), line(heads), line(["-" * w for w in widths])]
        out.extend(line(r) for r in rows)
        if len(self) > MAX_ROWS:
            out.append(f"... {len(self) - MAX_ROWS:,} more (the list holds all of them)")
        return "\n".join(out)

    def __repr__(self) -> str:
        return self._text()

    __str__ = __repr__

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(self._text() if not cycle else f"<{len(self)} {self.noun}s>")

    def _repr_html_(self) -> str:
        heads, rows = self._cells(MAX_HTML_ROWS)
        e = html.escape
        parts = [f'<div class="af-lab-table"><div><b>{e(self._summary())}</b></div>']
        if rows:
            parts.append('<table style="font-size: 0.9em"><thead><tr>')
            parts.extend(f'<th style="text-align:left">{e(h)}</th>' for h in heads)
            parts.append("</tr></thead><tbody>")
            for r in rows:
                parts.append("<tr>" + "".join(f'<td style="text-align:left">{e(c)}</td>' for c in r) + "</tr>")
            parts.append("</tbody></table>")
            if len(self) > MAX_HTML_ROWS:
                parts.append(f"<div>… {len(self) - MAX_HTML_ROWS:,} more (the list holds all of them)</div>")
        parts.append("</div>")
        return "".join(parts)


class DIDList(Table):
    """DIDs from a search or a listing: dicts with did, scope, name, type, bytes, length (and adler32, rses)."""

    noun = "DID"

    @property
    def columns(self) -> list[Column]:  # type: ignore[override]
        cols: list[Column] = [
            ("DID", lambda d: d.get("did") or f"{d.get('scope')}:{d.get('name')}"),
            ("type", lambda d: d.get("type") or ""),
            ("size", lambda d: human_bytes(d.get("bytes"))),
        ]
        if any(d.get("type") != "file" for d in self[:MAX_HTML_ROWS]):
            cols.append(("files", lambda d: _count(d.get("length"))))
        if any("adler32" in d for d in self[:MAX_HTML_ROWS]):
            cols.append(("adler32", lambda d: d.get("adler32") or ""))
        if any("rses" in d for d in self[:MAX_HTML_ROWS]):
            cols.append(("RSEs", lambda d: _list(d.get("rses"))))
        return cols

    @property
    def dids(self) -> list[str]:
        return [d["did"] for d in self]


def _mount_files(m: dict) -> str:
    f = m.get("files") or {}
    text = f"{f.get('done', 0)}/{f.get('total', 0)}"
    return text + (f" ({f['failed']} failed)" if f.get("failed") else "")


class MountList(Table):
    noun = "mount"
    columns: list[Column] = [
        ("id", lambda m: m["id"][:8]),
        ("DID", lambda m: m["did"]),
        ("mode", lambda m: m["mode"]),
        ("state", lambda m: m["state"]),
        ("files", _mount_files),
        ("size", lambda m: human_bytes((m.get("bytes") or {}).get("total"))),
        ("path", lambda m: m.get("target") or ""),
        ("created", lambda m: _when(m.get("created"))),
    ]


def _workers(c: dict) -> str:
    text = f"{c.get('workers', 0)}"
    if c.get("requested_workers") not in (None, c.get("workers")):
        text += f" (of {c['requested_workers']})"
    if c.get("adapt"):
        text += f" adapt {c['adapt'].get('minimum')}-{c['adapt'].get('maximum')}"
    return text


class ClusterList(Table):
    noun = "cluster"
    columns: list[Column] = [
        ("id", lambda c: c["id"][:8]),
        ("name", lambda c: c.get("name") or ""),
        ("profile", lambda c: c.get("profile") or ""),
        ("state", lambda c: c.get("state") or ""),
        ("workers", _workers),
        ("cores", lambda c: _count(c.get("cores"))),
        ("memory", lambda c: c.get("memory") or ""),
        ("scheduler", lambda c: c.get("scheduler_address") or ""),
        ("dashboard", lambda c: c.get("dashboard_url") or ""),
    ]


class _Strings(list):
    """A list of strings that shows the first ``MAX_ROWS`` of them."""

    noun = "item"

    def _text(self) -> str:
        head = f"{len(self):,} {self.noun}{'' if len(self) == 1 else 's'}"
        lines = [head + ":"] + [f"  {s}" for s in self[:MAX_ROWS]]
        if len(self) > MAX_ROWS:
            lines.append(f"  ... {len(self) - MAX_ROWS:,} more (the list holds all of them)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self._text()

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(self._text())


class MountPaths(_Strings):
    """The local paths of a mount's files (``.mount`` is the Mount it came from)."""

    noun = "path"

    def __init__(self, paths=(), mount: dict | None = None):
        super().__init__(paths)
        self.mount = mount or {}


class PublishedDIDs(_Strings):
    """DIDs a publish job registered: container, dataset, then files (``.job`` is the Job)."""

    noun = "DID"

    def __init__(self, dids=(), job: dict | None = None):
        super().__init__(dids)
        self.job = job or {}

    @property
    def did(self) -> str | None:
        """The job's main DID: the container or dataset, else the single file."""
        return self.job.get("did") or (self[0] if self else None)
