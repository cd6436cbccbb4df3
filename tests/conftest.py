"""Shared fixtures: an isolated platform home per test session, and the Docker and PostgreSQL gates.

Docker-backed tests skip when no engine answers, and PostgreSQL-backed tests when no server
binaries are installed, except where ``REGSANDBOX_REQUIRE_DOCKER=1`` (CI): there a missing engine
or server is a failure, so the real-component tests can never silently vanish.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from orchestrator.settings import Settings, get_settings
from tests.postgres import PostgresCluster, server_binaries


def _missing(what: str) -> NoReturn:
    if os.environ.get("REGSANDBOX_REQUIRE_DOCKER") == "1":
        pytest.fail(f"REGSANDBOX_REQUIRE_DOCKER=1 but {what}")
    pytest.skip(what)


def _docker_client():  # type: ignore[no-untyped-def]
    import docker

    try:
        client = docker.from_env()
        client.ping()
        return client
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine"
        _missing(f"no Docker engine answers: {exc}")


@pytest.fixture(scope="session")
def docker_client():  # type: ignore[no-untyped-def]
    return _docker_client()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL server for the session (``create_database()`` gives a fresh URL)."""
    bindir = server_binaries()
    if bindir is None:
        _missing("no PostgreSQL server binaries (initdb, postgres) are installed")
    cluster = PostgresCluster(bindir)
    try:
        cluster.start()
    except Exception as exc:  # noqa: BLE001 - any failure means "no server"
        cluster.stop()
        _missing(f"a PostgreSQL server could not be started: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def platform_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("regsandbox-home")


@pytest.fixture()
def settings(platform_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings pointing at the session's home, also installed as the process-wide settings."""
    monkeypatch.setenv("REGSANDBOX_HOME", str(platform_home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("REGSANDBOX_FAIL_AT", raising=False)
    get_settings.cache_clear()
    current = get_settings()
    current.ensure_dirs()
    yield current
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A real, temporary Prefect server for the session's flow runs."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield
