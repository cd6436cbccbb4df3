"""What the platform's containers run in a cluster (the Helm chart in ``helm/regsandbox``).

``regsandbox up`` does all of this in one process on one machine; in a cluster each server is a
container of its own and the first-run work happens before them, in an init container:

- ``python -m orchestrator.incluster bootstrap``: installs the issuer key the operator keeps in a
  Secret into the platform's home (mode 0600, where report signing looks for it) and creates the
  first administrator with the password from another Secret, when the platform has none;
- ``python -m orchestrator.incluster serve-flows``: waits for the Prefect server, then serves the
  ``sandbox-trial`` and ``reap-orphans`` deployments, as ``regsandbox up`` does.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import httpx

from orchestrator.errors import ConflictError, RegSandboxError, UnavailableError
from orchestrator.settings import Settings


def install_issuer_key(keys_dir: Path, source: Path) -> bool:
    """Copy the operator's issuer key into ``keys_dir``; True when it was written.

    A different key already in place is refused rather than replaced: reports signed with it
    would stop verifying against the key regulators hold, so a rotation is a deliberate act
    (remove the old file first), never a side effect of a restart.
    """
    from orchestrator.reports.signing import PRIVATE_KEY_NAME, load_or_create_key

    pem = source.read_bytes()
    target = keys_dir / PRIVATE_KEY_NAME
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if target.exists():
        if target.read_bytes().strip() == pem.strip():
            return False
        raise ConflictError(
            f"{target} holds another issuer key than {source}; remove it first to rotate the key"
        )
    partial = target.with_name(f".{PRIVATE_KEY_NAME}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    os.replace(partial, target)
    load_or_create_key(keys_dir)  # checks it is an Ed25519 key and writes the public key beside it
    return True


def ensure_admin(settings: Settings, password: str) -> bool:
    """Create the administrator ``admin`` with ``password`` unless an administrator exists."""
    from sqlalchemy import select

    from orchestrator.api.auth import BOOTSTRAP_ADMIN, create_user
    from orchestrator.store import session_scope
    from orchestrator.store.models import User

    if not password:
        raise ConflictError("the bootstrap administrator's password is empty")
    with session_scope(settings) as db:
        if db.scalars(select(User).where(User.role == "admin")).first() is not None:
            return False
        create_user(db, "helm install", BOOTSTRAP_ADMIN, password, "admin")
    return True


def bootstrap(settings: Settings, issuer_key: Path | None, admin_password_file: Path | None) -> list[str]:
    """First-run work before the servers start; returns one line per thing done."""
    settings.ensure_dirs()
    done = []
    if issuer_key is not None and install_issuer_key(settings.keys_dir, issuer_key):
        done.append(f"issuer key installed from {issuer_key}")
    if admin_password_file is not None:
        password = admin_password_file.read_text(encoding="utf-8").strip()
        if ensure_admin(settings, password):
            done.append("administrator 'admin' created")
    return done


def wait_for(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise UnavailableError(f"{url} did not answer within {timeout_s:.0f}s")
        time.sleep(1.0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.incluster", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    boot = commands.add_parser("bootstrap", help="install the issuer key, create the first administrator")
    boot.add_argument("--issuer-key", type=Path, help="PEM file of the Ed25519 issuer key")
    boot.add_argument("--admin-password-file", type=Path, help="file holding the administrator's password")
    serve = commands.add_parser("serve-flows", help="serve the sandbox-trial and reap-orphans deployments")
    serve.add_argument("--reap-interval", type=float, default=600.0, help="seconds between orphan sweeps")
    serve.add_argument("--wait", type=float, default=300.0, help="seconds to wait for the Prefect API")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings()
    try:
        if args.command == "bootstrap":
            for line in bootstrap(settings, args.issuer_key, args.admin_password_file):
                print(line)
            return 0
        api = os.environ.get("PREFECT_API_URL")
        if not api:
            raise UnavailableError("PREFECT_API_URL is not set: the runner needs the Prefect server's API")
        wait_for(f"{api.rstrip('/')}/health", args.wait)
        from orchestrator.stack import serve_flows

        serve_flows(args.reap_interval)
        return 0
    except (RegSandboxError, OSError) as exc:
        print(f"regsandbox: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
