"""First-run work of the platform pod in a cluster (python -m orchestrator.incluster bootstrap):
the operator's issuer key installed where signing finds it, the first administrator created once
with the operator's password, a different key refused rather than swapped."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from orchestrator import incluster
from orchestrator.api.auth import authenticate
from orchestrator.errors import ConflictError
from orchestrator.reports.signing import PUBLIC_KEY_NAME, load_or_create_key
from orchestrator.settings import Settings
from orchestrator.store import session_scope


def _pem_file(path: Path) -> Path:
    key = Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


def test_bootstrap_installs_the_key_and_creates_the_admin_once(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    key = _pem_file(tmp_path / "issuer.pem")
    password = tmp_path / "password"
    password.write_text("correct horse battery staple\n")

    done = incluster.bootstrap(settings, key, password)
    assert done == [f"issuer key installed from {key}", "administrator 'admin' created"]
    installed = settings.keys_dir / "issuer-ed25519.pem"
    assert stat.S_IMODE(installed.stat().st_mode) == 0o600
    assert (settings.keys_dir / PUBLIC_KEY_NAME).exists()
    # Report signing now uses the operator's key, not a fresh one.
    signing = load_or_create_key(settings.keys_dir)
    operator = serialization.load_pem_private_key(key.read_bytes(), password=None)
    assert signing.public_key().public_bytes_raw() == operator.public_key().public_bytes_raw()  # type: ignore[union-attr]
    with session_scope(settings) as db:
        assert authenticate(db, "admin", "correct horse battery staple", via="test").role == "admin"

    # A restart of the pod changes nothing, even with another password in the Secret.
    password.write_text("another one")
    assert incluster.bootstrap(settings, key, password) == []
    with session_scope(settings) as db:
        assert authenticate(db, "admin", "correct horse battery staple", via="test").username == "admin"


def test_a_different_issuer_key_is_refused(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    incluster.bootstrap(settings, _pem_file(tmp_path / "first.pem"), None)
    with pytest.raises(ConflictError, match="another issuer key"):
        incluster.bootstrap(settings, _pem_file(tmp_path / "second.pem"), None)


def test_cli_reports_one_line_without_prefect(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert incluster.main(["serve-flows", "--wait", "0"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "regsandbox: PREFECT_API_URL is not set: the runner needs the Prefect server's API"


def test_empty_admin_password_is_refused(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    empty = tmp_path / "password"
    empty.write_text("\n")
    with pytest.raises(ConflictError, match="password is empty"):
        incluster.bootstrap(settings, None, empty)
