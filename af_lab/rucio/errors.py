"""Rucio's failures as af-lab's typed errors, by cause: one translation for every caller.

Rucio names its failure in ``ExceptionClass`` (REST) and rucio-clients raises the class
of that name; both come here as (class name, message, HTTP status). What the user did
wrong is a 4xx naming the field (a bad metadata filter, an over-long credential);
what Rucio could not do is a 503 naming the instance.
"""

from __future__ import annotations

from typing import Any

from ..errors import (
    AFLabError,
    BadRequest,
    Conflict,
    Forbidden,
    InsufficientStorage,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
)

NOT_FOUND = {"DataIdentifierNotFound", "ScopeNotFound", "RSENotFound", "RuleNotFound", "AccountNotFound",
             "ReplicaNotFound", "SubscriptionNotFound"}
AUTH = {"CannotAuthenticate", "NoAuthInformation"}
DENIED = {"AccessDenied", "ScopeAccessDenied", "RSEAccessDenied", "CannotAuthorize"}
QUOTA = {"InsufficientAccountLimit", "RSEOverQuota", "FullStorage", "InsufficientTargetRSEs"}
EXISTS = {"DataIdentifierAlreadyExists", "FileAlreadyExists", "Duplicate", "DuplicateContent", "DuplicateRule",
          "FileReplicaAlreadyExists", "ScopeAlreadyExists"}
INVALID = {"InvalidObject", "InvalidMetadata", "InputValidationError", "InvalidPath", "InvalidReplicationRule",
           "InvalidRSEExpression", "UnsupportedOperation", "DIDFilterSyntaxError", "KeyNotFound", "InvalidType",
           "InvalidValueForKey", "ValueError", "TypeError", "UnsupportedMetadataPlugin", "InvalidRequest"}
# What Rucio's database says when a metadata filter compares a column with a value of the wrong type.
FILTER_FAULTS = {"DatabaseException", "DataError", "StatementError", "RucioException", "InvalidType", "KeyNotFound",
                 "InvalidValueForKey", "DIDFilterSyntaxError", "ValueError", "TypeError", "AttributeError"}


def translate(cls: str, message: str, status: int | None, instance: str, what: str, **details: Any) -> AFLabError:
    """The typed error for Rucio instance ``instance`` failing ``what`` with ``cls``/``message``.

    ``details`` may name the request's ``filter``: a database fault while applying a
    non-empty filter is the filter's fault (400 naming it), not Rucio being down.
    """
    msg = _first_line(message) or cls or f"HTTP {status}"
    info = {"instance": instance, "rucio_error": cls or None, **details}
    filt = details.get("filter")
    if status == 431:
        return BadRequest(f"Rucio instance '{instance}' refused {what}: the request is too long (HTTP 431); "
                          "shorten the value (credentials, filter or name).", field=details.get("field") or "request",
                          **info)
    # With a filter, a failure of Rucio's own (500: its database refused the comparison) is the
    # filter's; 502/503/504 still mean Rucio is unavailable.
    if filt and (cls in FILTER_FAULTS or cls in INVALID or (status or 0) in (400, 406, 500)):
        return BadRequest(f"Rucio instance '{instance}' cannot apply the metadata filter '{filt}': {msg}. "
                          "Compare each key with a value of its type (numbers for length/bytes, "
                          "dates as YYYY-MM-DD).", field="filters", **info)
    if cls in NOT_FOUND or status == 404:
        return NotFound(f"{what} does not exist on Rucio instance '{instance}' ({msg}).", **info)
    if cls in AUTH or status == 401:
        return Unauthorized(f"Rucio instance '{instance}' did not accept your credentials while {what}: {msg}. "
                            "Enter them again in the Data panel.", action="enter_credentials", **info)
    if cls in DENIED or status == 403:
        return Forbidden(f"Rucio instance '{instance}' refused {what}: {msg}", **info)
    if cls in QUOTA:
        return InsufficientStorage(f"Rucio instance '{instance}' refused {what}: not enough quota ({msg}).", **info)
    if cls in EXISTS:
        return Conflict(f"Rucio instance '{instance}' refused {what}: {msg}", **info)
    if cls in INVALID or (status or 0) in (400, 406, 409, 413, 414):
        return BadRequest(f"Rucio instance '{instance}' rejected {what}: {msg}", **info)
    return ServiceUnavailable(f"Rucio instance '{instance}' failed while {what} ({cls or 'HTTP'} {status or ''}: "
                              f"{msg}).".replace(" )", ")"), service="rucio", **info)


def from_exception(exc: BaseException, instance: str, what: str, **details: Any) -> AFLabError:
    """A typed error for any exception a Rucio call raised (af-lab's own pass through)."""
    if isinstance(exc, AFLabError):
        return exc
    return translate(type(exc).__name__, str(exc), None, instance, what, **details)


def from_response(resp, instance: str, what: str, **details: Any) -> AFLabError:
    cls, msg = response_exception(resp)
    return translate(cls, msg, resp.status_code, instance, what, **details)


def response_exception(resp) -> tuple[str, str]:
    """(ExceptionClass, ExceptionMessage) of a non-2xx Rucio answer, from headers or body."""
    cls = resp.headers.get("ExceptionClass", "")
    msg = resp.headers.get("ExceptionMessage", "")
    if not cls or not msg:
        try:
            body = resp.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            cls = cls or str(body.get("ExceptionClass") or "")
            msg = msg or str(body.get("ExceptionMessage") or "")
    return cls, msg


def _first_line(text: str) -> str:
    text = (text or "").strip()
    if "Details:" in text:  # rucio-clients: "<generic sentence>\nDetails: <server reason>"
        text = text.split("Details:", 1)[1].strip()
    return text.splitlines()[0][:300] if text else ""
