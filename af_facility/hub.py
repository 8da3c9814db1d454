"""The facility's stand-in for JupyterHub as a JWT issuer.

A real hub (or its upstream IdP) signs RS256 JWTs for its users and publishes
the public key; OpenBao's JWT auth method trusts that key and maps ``sub`` to
the per-user secret path. Here the "hub" is just a key pair under
``<state_root>/hub/`` and :func:`mint_jwt`; nothing listens on a port.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# Only ever compared as a string (bound_issuer); nothing resolves it.
HUB_ISSUER = "https://hub.af-lab.test/"
DEFAULT_AUDIENCE = "vault-jupyter"

# The demo users and their WLCG groups. Names are lower case on purpose: OpenBao
# 2.7 matches entity aliases case-insensitively, so the hub must hand out
# case-normalised names (see shared/notes/openbao-and-xcache.md).
DEMO_USERS: dict[str, tuple[str, ...]] = {
    "jdoe": ("/cms",),
    "asmith": ("/cms", "/cms/embargo"),
}
DEFAULT_USER = "jdoe"

PRIVATE_KEY_NAME = "jwt-signing-key.pem"
PUBLIC_KEY_NAME = "jwt-signing-key.pub.pem"


def hub_dir(state_root: Path | str) -> Path:
    d = Path(state_root) / "hub"
    d.mkdir(parents=True, exist_ok=True)
    return d


def public_key_file(state_root: Path | str) -> Path:
    return hub_dir(state_root) / PUBLIC_KEY_NAME


def ensure_signing_key(state_root: Path | str) -> tuple[Path, Path]:
    """Create the hub's RSA-2048 key pair once; later calls reuse it.

    Keeping the key across ``up``/``down`` means JWT files handed out earlier stay
    valid, and OpenBao is always configured with the same public key.
    """
    d = hub_dir(state_root)
    private_path, public_path = d / PRIVATE_KEY_NAME, d / PUBLIC_KEY_NAME
    if not private_path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write_private(private_path, pem, exclusive=True)
    if not public_path.exists():
        public_path.write_bytes(_public_pem(_load_private_key(private_path)))
    return private_path, public_path


def public_key_pem(state_root: Path | str) -> str:
    _, public_path = ensure_signing_key(state_root)
    return public_path.read_text()


def key_id(state_root: Path | str) -> str:
    """A stable ``kid``: a digest of the public key, so a new key gets a new id."""
    der = serialization.load_pem_public_key(public_key_pem(state_root).encode()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()[:12]).decode().rstrip("=")


def mint_jwt(
    state_root: Path | str,
    user: str,
    ttl_s: int = 3600,
    groups: Sequence[str] | None = None,
    audience: str = DEFAULT_AUDIENCE,
    extra_claims: Mapping[str, Any] | None = None,
) -> str:
    """Sign an RS256 JWT for ``user`` as the hub would.

    ``groups`` defaults to the demo user's groups (none for unknown users).
    ``extra_claims`` is applied last, so tests can forge e.g. an expired ``exp``
    or a foreign ``iss``.
    """
    private_path, _ = ensure_signing_key(state_root)
    now = int(time.time())
    group_list = list(DEMO_USERS.get(user, ()) if groups is None else groups)
    claims: dict[str, Any] = {
        "iss": HUB_ISSUER,
        "sub": user,
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + int(ttl_s),
        # WLCG token profile name, plus the plain claim most IdPs emit.
        "wlcg.groups": group_list,
        "groups": group_list,
    }
    claims.update(extra_claims or {})
    return jwt.encode(claims, _load_private_key(private_path), algorithm="RS256", headers={"kid": key_id(state_root)})


def write_user_jwt(
    state_root: Path | str,
    user: str,
    ttl_s: int = 3600,
    groups: Sequence[str] | None = None,
    audience: str = DEFAULT_AUDIENCE,
    extra_claims: Mapping[str, Any] | None = None,
) -> Path:
    """Mint a JWT for ``user`` into ``<state_root>/hub/<user>.jwt`` (mode 0600)."""
    if not user or "/" in user or user.startswith("."):
        raise ValueError(f"not a usable user name for a file: {user!r}")
    token = mint_jwt(state_root, user, ttl_s=ttl_s, groups=groups, audience=audience, extra_claims=extra_claims)
    path = hub_dir(state_root) / f"{user}.jwt"
    _write_private(path, (token + "\n").encode())
    return path


def _write_private(path: Path, data: bytes, exclusive: bool = False) -> None:
    """Write via a 0600 temp file, so the secret is never readable by others.

    ``exclusive``: keep an existing file (two concurrent ``up`` calls must not end
    up with different keys); otherwise replace it atomically.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o600)  # a leftover tmp file would keep its old mode
        if exclusive:
            try:
                os.link(tmp, path)  # atomic "create unless it exists"
            except FileExistsError:
                pass
        else:
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _load_private_key(path: Path) -> rsa.RSAPrivateKey:
    stat = path.stat()
    return _parse_private_key(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _parse_private_key(path: str, _mtime_ns: int, _size: int) -> rsa.RSAPrivateKey:
    """Parsing validates the RSA key (~60 ms); cache it per file version."""
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError(f"{path} does not hold an RSA private key")
    return key


def _public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
