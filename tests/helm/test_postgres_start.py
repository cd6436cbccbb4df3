"""The bundled PostgreSQL's start script (helm/regsandbox/files/postgres-start.sh), run for real
against this machine's PostgreSQL server binaries as a non-root user: an empty volume becomes a
cluster with the platform's three databases behind password authentication; a restart keeps the
data and skips the initialisation."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import _missing
from tests.helm.chart import CHART
from tests.postgres import _free_port, _service_user, server_binaries

SCRIPT = CHART / "files" / "postgres-start.sh"
PASSWORD = "Ab12cd34Ef56gh78"


class Started:
    def __init__(self, root: Path, bindir: Path) -> None:
        self.root, self.bindir, self.port = root, bindir, _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = root / "start.log"

    def start(self) -> str:
        user = _service_user()
        env = {
            "PATH": "/usr/bin:/bin",
            "PG_BIN": str(self.bindir),
            "PGDATA": str(self.root / "volume" / "pgdata"),
            "PGPORT": str(self.port),
            "PG_SOCKET_DIR": str(self.root),
            "TMPDIR": str(self.root),
            "POSTGRES_USER": "regsandbox",
            "POSTGRES_PASSWORD": PASSWORD,
        }
        as_user = {} if user is None else {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        self.process = subprocess.Popen(
            ["/bin/sh", str(SCRIPT)], env=env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT, **as_user
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"start script exited {self.process.returncode}: {self.log.read_text()}")
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2):
                    return self.log.read_text()
            except psycopg.OperationalError:
                time.sleep(0.3)
        pytest.fail(f"PostgreSQL did not accept connections: {self.log.read_text()}")

    def url(self, db: str, password: str = PASSWORD) -> str:
        return f"postgresql://regsandbox:{password}@127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
            self.process.wait(timeout=30)


@pytest.fixture
def volume() -> Iterator[tuple[Path, Path]]:
    bindir = server_binaries()
    if bindir is None:
        _missing("no PostgreSQL server binaries (initdb, postgres) are installed")
    root = Path(tempfile.mkdtemp(prefix="regsandbox-pgstart-"))
    (root / "volume").mkdir()
    user = _service_user()
    if user is not None:
        for path in (root, root / "volume"):
            os.chown(path, user.pw_uid, user.pw_gid)
    yield root, bindir
    shutil.rmtree(root, ignore_errors=True)


def test_first_start_creates_the_databases_and_a_restart_keeps_them(volume: tuple[Path, Path]) -> None:
    root, bindir = volume
    server = Started(root, bindir)
    try:
        first = server.start()
        assert "created PostgreSQL cluster" in first
        for db in ("platform", "prefect", "mlflow"):
            with psycopg.connect(server.url(db)) as conn:
                conn.execute("CREATE TABLE IF NOT EXISTS kept (v text)")
                conn.execute("INSERT INTO kept VALUES (%s)", (db,))
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(server.url("platform", password="wrong"), connect_timeout=5)
        server.stop()

        again = Started(root, bindir)
        again.port = server.port
        again.log = server.log
        server = again
        log = server.start()
        assert log.count("created PostgreSQL cluster") == 1
        with psycopg.connect(server.url("mlflow")) as conn:
            assert conn.execute("SELECT v FROM kept").fetchall() == [("mlflow",)]
    finally:
        server.stop()
