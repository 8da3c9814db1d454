"""Typed errors raised by af-lab services (pure Python: no tornado here).

Handlers turn them into JSON responses ``{"error": {"type", "message", ...}}``
with the status code below. Messages are shown to the user as they are, so they
say what went wrong and what to do, and never contain a secret.
"""

from __future__ import annotations

from typing import Any


class AFLabError(Exception):
    status = 500
    kind = "internal"

    def __init__(self, message: str, **details: Any):
        super().__init__(message)
        self.message = message
        self.details = details

    def to_json(self) -> dict[str, Any]:
        return {"error": {"type": self.kind, "message": self.message, **self.details}}


class BadRequest(AFLabError):
    status = 400
    kind = "bad_request"


class Unauthorized(AFLabError):
    """Credentials are missing or expired: the user has to act (log in, refresh)."""

    status = 401
    kind = "credentials"


class Forbidden(AFLabError):
    status = 403
    kind = "forbidden"


class NotFound(AFLabError):
    status = 404
    kind = "not_found"


class Conflict(AFLabError):
    status = 409
    kind = "conflict"


class InsufficientStorage(AFLabError):
    status = 507
    kind = "insufficient_storage"


class FileChanged(AFLabError):
    """A local file vanished or changed while it was being published."""

    status = 409
    kind = "file_changed"


class ServiceUnavailable(AFLabError):
    """A backing service (Rucio, Vault, XCache, a scheduler) cannot be reached."""

    status = 503
    kind = "unavailable"
