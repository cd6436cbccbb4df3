"""Credentials: password hashing (Argon2, through argon2-cffi) and random tokens kept as digests.

A token is shown once, when issued; only its SHA-256 is stored, so a leaked database reveals no
usable token. Tokens carry a short prefix naming their kind, so one found in a log is recognised.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_token(kind: str) -> tuple[str, str]:
    """A fresh token of ``kind`` (``api``, ``ep``, ``ses`` ...) and the digest to store."""
    token = f"rs{kind}_{secrets.token_urlsafe(32)}"
    return token, digest(token)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def platform_credential(keys_dir: Path, trial_id: str) -> str:
    """What the platform's gateway presents to one trial's own gateway, derived, never stored.

    The trial's flow run and the platform's API both hold the home's secret, so each derives the
    same credential for a trial and no per-trial secret travels through the database.
    """
    path = keys_dir / "platform-secret"
    if not path.is_file():
        keys_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    key = path.read_text().strip().encode()
    return "rsplat_" + hmac.new(key, trial_id.encode(), hashlib.sha256).hexdigest()


def new_password() -> str:
    """A generated password for the bootstrap administrator (shown once)."""
    return secrets.token_urlsafe(18)
