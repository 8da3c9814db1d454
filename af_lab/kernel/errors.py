"""The kernel side's errors, shown by IPython without a traceback."""

from __future__ import annotations

from typing import Any


class FacilityError(Exception):
    """An af-lab request failed. ``str()`` is the server's message (never HTML, never a token).

    ``status`` is the HTTP status (None when the server could not be reached), ``kind`` the
    server's error type (``bad_request``, ``not_found``, ``credentials``...), ``details`` the
    rest of the server's error object.
    """

    def __init__(self, message: str, status: int | None = None, kind: str | None = None, **details: Any):
        super().__init__(message)
        self.message = message
        self.status = status
        self.kind = kind
        self.details = details

    def __str__(self) -> str:
        return self.message

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a traceback: the message is the whole story.
        label = f"af-lab error ({self.status})" if self.status else "af-lab error"
        return [f"\x1b[0;31m{label}\x1b[0m: {self.message}"]


class StoppedWaiting(KeyboardInterrupt):
    """Ctrl-C while a magic waited: the server-side job goes on. Shown without a traceback."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[0;33mStopped waiting\x1b[0m: {self.message}"]
