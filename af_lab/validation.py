"""Validation of every JSON request body at the edge, before a service sees it.

One JSON Schema per route and verb (``BODY_SCHEMAS``, keyed by the handler's
``module.Class.verb``) bounds types, lengths, ranges and the number of items; the
nesting depth and the body size are bounded for every route. A violation is a
:class:`BadRequest` whose ``field`` names the offending field (``a.b[2]`` for a
nested one) and whose ``rule`` names the rule broken. Services still check what
only they can know (an unknown instance, a profile's limits, naming policy).
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft7Validator

from .errors import BadRequest

MAX_BODY_BYTES = 1024 * 1024
MAX_DEPTH = 8  # the deepest real body is 3 levels ({"adapt": {"minimum": 1}})

_SHORT = {"type": "string", "maxLength": 256}
_NAME = {"type": "string", "maxLength": 512}  # a DID, a workspace path component, an RSE expression
_PATH = {"type": "string", "minLength": 1, "maxLength": 1024}
_OPT_SHORT = {"type": ["string", "null"], "maxLength": 256}
_OPT_NAME = {"type": ["string", "null"], "maxLength": 512}
_COUNT = {"type": "integer", "minimum": 0, "maximum": 100_000}
_BYTES = {"anyOf": [{"type": "string", "maxLength": 64}, {"type": "integer", "minimum": 0, "maximum": 2**62}]}
_DAYS = {"type": "number", "exclusiveMinimum": 0, "maximum": 36_500}
_ADAPT = {
    "x-message": 'adapt must be {"minimum": a, "maximum": b} (whole numbers) or null',
    "type": ["object", "null"],
    "properties": {"minimum": _COUNT, "maximum": _COUNT},
    "additionalProperties": False,
}

MOUNT = {
    "type": "object",
    "properties": {
        "did": {"type": "string", "minLength": 1, "maxLength": 1024},
        "instance": _OPT_SHORT,
        "mode": {"enum": ["cache", "stream", "replica", None]},
        "target": {"type": ["string", "null"], "maxLength": 1024},
        "source": {"enum": ["auto", "xcache", "direct", None]},
        "prefer_rses": {"type": ["array", "null"], "items": _SHORT, "maxItems": 64},
        "format": {"enum": ["json", "yaml", None]},
        "treename": {"type": ["string", "null"], "maxLength": 256},
        "rse": _OPT_SHORT,
        "request_rule": {"type": ["boolean", "null"]},
        "lifetime_days": {"type": "number", "exclusiveMinimum": 0, "maximum": 365},
        "refresh": {"type": ["boolean", "null"]},
    },
    "required": ["did"],
    "additionalProperties": False,
}

PUBLISH = {
    "type": "object",
    "properties": {
        "paths": {"anyOf": [_PATH, {"type": "array", "items": _PATH, "minItems": 1, "maxItems": 10_000}]},
        "path": _PATH,
        "instance": _OPT_SHORT,
        "scope": _OPT_SHORT,
        "rse": _OPT_SHORT,
        "lifetime_days": {"anyOf": [_DAYS, {"type": "null"}],
                          "x-message": "lifetime_days must be a positive number of days (or null for no lifetime)"},
        "dataset": _OPT_NAME,
        "container": _OPT_NAME,
        "name": _OPT_NAME,
        "name_prefix": _OPT_NAME,
        "notebook": {"type": ["string", "null"], "maxLength": 1024},
        "inputs": {"type": ["array", "null"], "items": {"type": "string", "maxLength": 1024}, "maxItems": 1000},
        "cluster_profile": _OPT_SHORT,
        "allow_empty": {"type": ["boolean", "null"]},
    },
    "additionalProperties": False,
}

CLUSTER_CREATE = {
    "type": "object",
    "properties": {
        "profile": _OPT_SHORT,
        "name": _OPT_SHORT,
        "environment": {**_OPT_NAME, "x-message": "environment must be a string (an environment name or a Python prefix)"},
        "client_distributed": _OPT_SHORT,
        "require": {"type": ["array", "null"], "maxItems": 64,
                    "items": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$", "maxLength": 128},
                    "x-message": "require must be a list of Python module names (like coffea, ROOT)"},
        "cores": {"anyOf": [_COUNT, {"type": "number", "minimum": 0, "maximum": 100_000}, {"type": "null"}],
                  "x-message": "cores must be a whole number"},
        "memory": {"anyOf": [_BYTES, {"type": "null"}], "x-message": 'memory must be an amount of bytes like "4 GiB"'},
        "disk": {"anyOf": [_BYTES, {"type": "null"}], "x-message": 'disk must be an amount of bytes like "10 GiB"'},
        "gpus": {"anyOf": [_COUNT, {"type": "null"}], "x-message": "gpus must be a whole number"},
        "image": _OPT_NAME,
        "universe": _OPT_SHORT,
        "workers": {"anyOf": [_COUNT, {"type": "null"}], "x-message": "workers must be a whole number"},
        "adapt": _ADAPT,
    },
    # Profiles may define more options (and the clusters service names unknown ones): bounded, not listed.
    "additionalProperties": {"type": ["string", "number", "boolean", "null"], "maxLength": 1024},
}

CLUSTER_PATCH = {
    "type": "object",
    "properties": {
        "workers": {**_COUNT, "x-message": "workers must be a whole number"},
        "wait": {"type": ["number", "null"], "minimum": 0, "maximum": 3600,
                 "x-message": "wait must be a number of seconds (at most 3600)"},
        "adapt": _ADAPT,
    },
    "additionalProperties": False,
}

CREDENTIALS = {
    "type": "object",
    "properties": {
        "auth_type": {"enum": ["userpass", "oidc", None]},
        # Lengths only: the characters a secret may hold are checked by the credential service.
        "username": {"type": "string", "maxLength": 256},
        "password": {"type": "string", "maxLength": 1024},
        "account": {"type": ["string", "null"], "maxLength": 256},
        "token": {"type": "string", "maxLength": 16_384},
    },
    "additionalProperties": False,
}

ATTACHMENTS_RESOLVE = {
    "type": "object",
    "properties": {
        "attachments": {
            "type": "array",
            "maxItems": 500,
            "items": {
                "type": "object",
                "properties": {
                    "did": {"type": "string", "minLength": 1, "maxLength": 1024},
                    "mode": {"enum": ["cache", "stream", "replica", None]},
                    "instance": _OPT_SHORT,
                },
                "required": ["did"],
                "additionalProperties": False,
            },
        },
        "refresh": {"type": ["boolean", "null"]},
    },
    "required": ["attachments"],
    "additionalProperties": False,
}

ROOTFILE = {
    "type": "object",
    "properties": {"path": _PATH},
    "required": ["path"],
    "additionalProperties": False,
}

BODY_SCHEMAS: dict[str, dict[str, Any]] = {
    "af_lab.mounts.handlers.MountsHandler.post": MOUNT,
    "af_lab.publish.handlers.ValidateHandler.post": PUBLISH,
    "af_lab.publish.handlers.JobsHandler.post": PUBLISH,
    "af_lab.clusters.handlers.ClustersHandler.post": CLUSTER_CREATE,
    "af_lab.clusters.handlers.ClusterHandler.patch": CLUSTER_PATCH,
    "af_lab.vault.handlers.InstanceCredentialsHandler.put": CREDENTIALS,
    "af_lab.attachments.handlers.ResolveHandler.post": ATTACHMENTS_RESOLVE,
    "af_lab.rootfile.handlers.RootFileHandler.post": ROOTFILE,
}

_VALIDATORS = {key: Draft7Validator(schema) for key, schema in BODY_SCHEMAS.items()}

_RULES = {
    "type": lambda e: f"must be of type {_types(e.validator_value)}",
    "maxLength": lambda e: f"at most {e.validator_value} characters",
    "minLength": lambda e: "must not be empty" if e.validator_value == 1 else f"at least {e.validator_value} characters",
    "maxItems": lambda e: f"at most {e.validator_value} items",
    "minItems": lambda e: f"at least {e.validator_value} item(s)",
    "maximum": lambda e: f"at most {e.validator_value}",
    "minimum": lambda e: f"at least {e.validator_value}",
    "exclusiveMinimum": lambda e: f"greater than {e.validator_value}",
    "enum": lambda e: "one of " + ", ".join(json.dumps(v) for v in e.validator_value if v is not None),
    "required": lambda e: "required",
    "additionalProperties": lambda e: "unknown field",
    "anyOf": lambda e: _any_of(e),
}


def _types(value: Any) -> str:
    names = [value] if isinstance(value, str) else list(value)
    return " or ".join(n for n in names if n != "null") or "null"


def _any_of(error) -> str:
    rules = [_RULES.get(sub.validator, lambda e: e.validator)(sub) for sub in error.context]
    return "; or ".join(dict.fromkeys(rules)) if rules else "an allowed value"


def _field(error) -> str:
    text = ""
    for part in error.absolute_path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        return f"{text}.{missing}" if text else missing
    if error.validator == "additionalProperties" and error.validator_value is False:
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        name = extra[0] if extra else ""
        return f"{text}.{name}" if text else name
    return text or "body"


def parse_body(raw: bytes, key: str) -> dict[str, Any]:
    """Parse and validate the JSON object body of the route ``key`` (``module.Class.verb``)."""
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest(f"request body is larger than {MAX_BODY_BYTES} bytes", field="body",
                         rule=f"at most {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw)
    except RecursionError:
        body = None  # nested beyond the interpreter's limit: reported as too deep below
        _too_deep()
    except ValueError as exc:  # also bad UTF-8 and integers of more than 4,300 digits
        raise BadRequest(f"request body is not valid JSON: {exc}", field="body", rule="valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object", field="body", rule="a JSON object")
    if _depth(body) > MAX_DEPTH:
        _too_deep()
    validator = _VALIDATORS.get(key)
    if validator is not None:
        errors = sorted(validator.iter_errors(body), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
        if errors:
            error = errors[0]
            field, rule = _field(error), _RULES.get(error.validator, lambda e: str(e.validator))(error)
            raise BadRequest(_message(BODY_SCHEMAS[key], error, field, rule), field=field, rule=rule)
    return body


def _message(schema: dict, error, field: str, rule: str) -> str:
    """The property's own wording for a value of the wrong kind (``x-message``), else field: rule."""
    prop = schema.get("properties", {}).get(error.absolute_path[0]) if error.absolute_path else None
    if prop and "x-message" in prop and error.validator in ("type", "anyOf"):
        return f"{prop['x-message']} ({field}: {rule})"
    return f"'{field}': {rule}"


def _too_deep():
    raise BadRequest(f"request body is nested deeper than {MAX_DEPTH} levels", field="body",
                     rule=f"at most {MAX_DEPTH} levels of nesting")


def _depth(value: Any, level: int = 1) -> int:
    """Nesting depth, without recursing past MAX_DEPTH + 1."""
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level - 1 if level > 1 else level
