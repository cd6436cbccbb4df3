"""A throwaway PostgreSQL server for tests: ``initdb`` into a temporary directory, ``postgres`` on a
free loopback port, one fresh database per caller, everything removed at the end.

PostgreSQL refuses to run as root, so under root the server runs as the ``postgres`` system user
(Debian's package creates it) or else ``nobody``, and owns its directory. Nothing is installed or
started system-wide: the cluster lives and dies with the test session.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

SUPERUSER = "regsandbox"
# Not UTC on purpose: the platform must read its timestamps back right whatever the server's zone.
SERVER_TIMEZONE = "Asia/Bangkok"


def _has_server(bindir: Path) -> bool:
    return (bindir / "initdb").is_file() and (bindir / "postgres").is_file()


def server_binaries() -> Path | None:
    """The directory holding ``initdb`` and ``postgres``, newest version first, or None."""
    candidates: list[Path] = []
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, timeout=10)
        candidates.append(Path(out.stdout.strip()))
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    # Debian keeps server binaries off PATH, one directory per major version.
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += [Path(p) for p in sorted(versions, key=lambda p: int(Path(p).parent.name), reverse=True)]
    return next((c for c in candidates if _has_server(c)), None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _service_user() -> pwd.struct_passwd | None:
    """Who the server runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and neither a postgres nor a nobody user exists")


class PostgresCluster:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="regsandbox-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.user = _service_user()

    def _run_as(self) -> dict[str, Any]:
        if self.user is None:
            return {}
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}

    def start(self, timeout: float = 60.0) -> PostgresCluster:
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        env = {**os.environ, "LC_ALL": "C", "LANG": "C", "TZ": "UTC"}
        subprocess.run(
            [str(self.bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "-A", "trust"]
            + ["-E", "UTF8", "--no-locale", "--no-sync"],
            check=True,
            capture_output=True,
            cwd=self.root,
            env=env,
            timeout=timeout,
            **self._run_as(),
        )
        for _attempt in range(3):  # a free port can be taken between choosing and binding it
            self.port = _free_port()
            if self._launch(env, timeout):
                return self
        tail = self.log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"postgres did not start; its log:\n{tail}")

    def _launch(self, env: dict[str, str], timeout: float) -> bool:
        args = [str(self.bindir / "postgres"), "-D", str(self.data), "-h", "127.0.0.1", "-p", str(self.port)]
        args += ["-k", str(self.root), "-c", f"timezone={SERVER_TIMEZONE}"]
        # Durability is worthless for a throwaway cluster and costs seconds per test.
        args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                env=env,
                start_new_session=True,
                **self._run_as(),
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            with contextlib.suppress(Exception):
                self._execute("SELECT 1")
                return True
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"postgres on port {self.port} did not answer within {timeout:.0f} s")

    def _execute(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.encode())

    def url(self, database: str, driver: str = "postgresql") -> str:
        return f"{driver}://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; its SQLAlchemy URL (psycopg 3 driver)."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self._execute(f'CREATE DATABASE "{name}"')
        return self.url(name, "postgresql+psycopg")

    def halt(self) -> None:
        """Shut the server down, keeping its data, as an outage or a restart would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=20)

    def resume(self, timeout: float = 60.0) -> None:
        """Start the server again on the same port and data (after :meth:`halt`)."""
        env = {**os.environ, "LC_ALL": "C", "LANG": "C", "TZ": "UTC"}
        if not self._launch(env, timeout):
            raise RuntimeError(f"postgres did not come back on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # "fast" shutdown: open connections are closed
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)
