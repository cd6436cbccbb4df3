"""Ed25519 signatures over the stored exit report bytes.

Verification needs only three files: ``report.json``, ``report.json.sig`` (base64 of the raw
64-byte signature) and the issuer's public key (PEM). It checks the signature over the file
bytes exactly as stored, and that those bytes are the canonical form of a v1 report, so no
re-serialisation can hide a change: any changed byte fails.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
import os
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from orchestrator.reports.model import ReportIntegrityError, canonical_json, parse_report

PRIVATE_KEY_NAME = "issuer-ed25519.pem"
PUBLIC_KEY_NAME = "issuer-ed25519.pub.pem"
SIGNATURE_SIZE = 64

log = logging.getLogger(__name__)


def _public_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _write_private_once(path: Path, pem: bytes) -> bool:
    """Create ``path`` with mode 0600 unless it exists; False when another process won the race."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-")  # mkstemp creates files 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        # link() fails if the name exists, so two first uses never end up with two issuer keys.
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _load_private(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ReportIntegrityError(f"{path} is not an Ed25519 private key")
    if path.stat().st_mode & 0o077:
        # Not fatal: secret volumes are often mounted 0644, but the operator should know.
        log.warning("signing key %s is readable by other users", path)
    return key


def load_or_create_key(keys_dir: Path) -> Ed25519PrivateKey:
    """The issuer's signing key, created on first use (private key 0600, public key beside it)."""
    keys_dir = Path(keys_dir)
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = keys_dir / PRIVATE_KEY_NAME
    if not path.exists():
        fresh = Ed25519PrivateKey.generate()
        pem = fresh.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write_private_once(path, pem)
    key = _load_private(path)
    _ensure_public(keys_dir, key)
    return key


def _ensure_public(keys_dir: Path, key: Ed25519PrivateKey) -> Path:
    path = keys_dir / PUBLIC_KEY_NAME
    pem = _public_pem(key)
    # The public file is derived data: rewrite it if missing or not matching the private key.
    if not path.exists() or path.read_bytes() != pem:
        fd, tmp = tempfile.mkstemp(dir=keys_dir, prefix=".pub-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    return path


def export_public_key(keys_dir: Path) -> Path:
    """Path of the issuer's public key (PEM), the file regulators verify reports with."""
    load_or_create_key(keys_dir)  # also (re)writes the public key file next to the private one
    return Path(keys_dir) / PUBLIC_KEY_NAME


def public_key_fingerprint(keys_dir: Path) -> str:
    """sha256 of the raw public key, to compare with the fingerprint the issuer publishes out of band."""
    raw = (
        load_or_create_key(keys_dir)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def sign(data: bytes, keys_dir: Path) -> bytes:
    """Raw 64-byte Ed25519 signature of ``data`` with the issuer key."""
    return load_or_create_key(keys_dir).sign(data)


def encode_signature(signature: bytes) -> bytes:
    """Signature file content: base64 text and a newline."""
    return base64.b64encode(signature) + b"\n"


def decode_signature(text: bytes) -> bytes:
    """Raw signature from signature file content; raises ``ReportIntegrityError`` when malformed."""
    try:
        raw = base64.b64decode(b"".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ReportIntegrityError(f"signature is not base64: {exc}") from exc
    if len(raw) != SIGNATURE_SIZE:
        raise ReportIntegrityError(f"signature has {len(raw)} bytes, expected {SIGNATURE_SIZE}")
    return raw


def load_public_key(path: Path | str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except ValueError as exc:
        raise ReportIntegrityError(f"{path} is not a PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ReportIntegrityError(f"{path} is not an Ed25519 public key")
    return key


def verification_problem(
    report_path: Path | str, signature_path: Path | str, public_key_path: Path | str
) -> str | None:
    """Why the report does not verify, or None when it is intact.

    Missing files raise ``OSError``: that is a usage problem, not evidence of tampering.
    """
    data = Path(report_path).read_bytes()
    sig_text = Path(signature_path).read_bytes()
    try:
        signature = decode_signature(sig_text)
        load_public_key(public_key_path).verify(signature, data)
    except ReportIntegrityError as exc:
        return str(exc)
    except InvalidSignature:
        return "signature does not match the report bytes and public key"
    # A valid signature over non-canonical bytes means the issuer signed something the
    # format does not allow; refuse it rather than trust a second spelling of a report.
    try:
        canonical = canonical_json(parse_report(data))
    except ReportIntegrityError as exc:
        return str(exc)
    if canonical != data:
        return "report bytes are signed but not in canonical form"
    return None


def verify(report_path: Path | str, signature_path: Path | str, public_key_path: Path | str) -> bool:
    """True when the stored report bytes carry a valid issuer signature and are canonical."""
    return verification_problem(report_path, signature_path, public_key_path) is None
