"""The platform database goes away during a trial; the trial ends and its row says so.

Real databases: the platform's SQLite file, locked by another connection for longer than the
store's 30 s busy timeout; and a real PostgreSQL server (tests/postgres.py) shut down in the
middle of the trial and started again. The sandbox is the FAKE backend of tests/unit (no
Docker needed for what is tested here: the database path); everything else is real. The
trial's outcome never depends on the database; its row ends closed with the report's digest,
by the final publish's retries or, when the outage outlasts them, by the sweep.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from orchestrator.abandoned import reconcile_rows
from orchestrator.lifecycle import Step, StepFn, run_lifecycle
from orchestrator.settings import Settings, get_settings
from orchestrator.store import session_scope, trials
from orchestrator.store.trials import find, publish
from tests.postgres import PostgresCluster, server_binaries
from tests.unit.test_lifecycle import spec_for

pytestmark = pytest.mark.slow


def at_step(name: str, action: Callable[[], None]) -> Callable[[Step], StepFn]:
    """A wrap that runs ``action`` just before step ``name`` (the fault's moment)."""

    def wrap(step: Step) -> StepFn:
        if step.name != name:
            return step.run

        def run(trial):  # type: ignore[no-untyped-def]
            action()
            return step.run(trial)

        return run

    return wrap


def run_published(settings: Settings, trial_id: str, model: Path, wrap: Callable[[Step], StepFn]):  # type: ignore[no-untyped-def]
    spec = spec_for(model)
    return run_lifecycle(
        spec,
        trial_id,
        settings,
        backend="fake",
        wrap=wrap,
        publish=partial(publish, settings, trial_id, spec),
    )


def row_of(settings: Settings, trial_id: str) -> dict[str, object]:
    with session_scope(settings) as db:
        row = find(db, trial_id)
        assert row is not None
        return {"status": row.status, "state": row.state, "sha": row.report_sha256}


def digest(path: str | None) -> str:
    assert path
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_sqlite_locked_past_its_busy_timeout(lifecycle_settings: Settings, fake_model: Path) -> None:
    settings = lifecycle_settings
    db_file = settings.home / "platform.db"
    with session_scope(settings):
        pass  # the file and its tables exist before the lock is taken
    locker = sqlite3.connect(db_file, timeout=1, check_same_thread=False, isolation_level=None)
    held = threading.Event()

    def lock_for(seconds: float) -> None:
        locker.execute("BEGIN EXCLUSIVE")
        held.set()
        time.sleep(seconds)
        locker.execute("COMMIT")

    holder = threading.Thread(target=lock_for, args=(40.0,))
    started = time.monotonic()

    def take_lock() -> None:
        holder.start()
        held.wait(5)

    outcome = run_published(settings, "t-db-sqlite", fake_model, at_step("assess", take_lock))
    holder.join()
    locker.close()
    assert outcome.status == "completed", outcome.error
    assert time.monotonic() - started >= 40, "the lock did not outlast the trial's end"
    row = row_of(settings, "t-db-sqlite")
    assert row == {"status": "completed", "state": "reported", "sha": digest(outcome.report["json"])}


@pytest.fixture()
def postgres(tmp_path: Path) -> Iterator[PostgresCluster]:
    bindir = server_binaries()
    if bindir is None:
        pytest.fail("no PostgreSQL server binaries (initdb, postgres): CI installs them")
    cluster = PostgresCluster(bindir)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture()
def pg_settings(
    lifecycle_settings: Settings,
    postgres: PostgresCluster,
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:
    monkeypatch.setenv("REGSANDBOX_DATABASE_URL", postgres.create_database("outage"))
    get_settings.cache_clear()
    return get_settings()


def test_postgres_restarted_mid_trial(
    pg_settings: Settings, postgres: PostgresCluster, fake_model: Path
) -> None:
    def outage() -> None:
        postgres.halt()
        threading.Timer(8.0, postgres.resume).start()

    outcome = run_published(pg_settings, "t-db-pg", fake_model, at_step("monitor", outage))
    assert outcome.status == "completed", outcome.error
    time.sleep(0.1)
    row = row_of(pg_settings, "t-db-pg")
    assert row == {"status": "completed", "state": "reported", "sha": digest(outcome.report["json"])}


def test_postgres_away_past_the_final_publish_is_closed_by_the_sweep(
    pg_settings: Settings,
    postgres: PostgresCluster,
    fake_model: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(trials, "FINAL_PATIENCE_S", 2.0)
    outcome = run_published(pg_settings, "t-db-pg-long", fake_model, at_step("assess", postgres.halt))
    assert outcome.status == "completed", outcome.error
    postgres.resume()
    assert row_of(pg_settings, "t-db-pg-long")["status"] == "running"  # the last publish that got through
    assert reconcile_rows(pg_settings) == ["t-db-pg-long"]
    row = row_of(pg_settings, "t-db-pg-long")
    assert row == {"status": "completed", "state": "reported", "sha": digest(outcome.report["json"])}
    assert reconcile_rows(pg_settings) == []
