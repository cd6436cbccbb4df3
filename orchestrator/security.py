"""Credentials: password hashing (Argon2, through argon2-cffi) and random tokens kept as digests.

A token is shown once, when issued; only its SHA-256 is stored, so a leaked database reveals no
usable token. Tokens carry a short prefix naming their kind, so one found in a log is recognised.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

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


def new_password() -> str:
    """A generated password for the bootstrap administrator (shown once)."""
    return secrets.token_urlsafe(18)
