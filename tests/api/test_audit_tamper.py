"""``regsandbox audit verify`` on the platform's database: intact, then one record changed in SQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from orchestrator.cli import app as cli
from orchestrator.settings import get_settings
from orchestrator.store import engine
from tests.api.conftest import Platform


@pytest.fixture()
def cli_env(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("REGSANDBOX_HOME", str(platform.settings.home))
    if platform.settings.database_url:
        monkeypatch.setenv("REGSANDBOX_DATABASE_URL", platform.settings.database_url)
    else:
        monkeypatch.delenv("REGSANDBOX_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_one_changed_record_is_named(platform: Platform, cli_env: None) -> None:
    platform.get("reg_sg", f"/api/trials/{platform.refs['A']}/report/json")
    platform.get("reg_sg", f"/api/trials/{platform.refs['A']}/report/html")
    intact = CliRunner().invoke(cli, ["audit", "verify"])
    assert intact.exit_code == 0, intact.output
    assert "intact" in intact.stdout
    with engine(platform.settings).connect() as conn:
        seq = conn.execute(
            text("SELECT min(seq) FROM audit_events WHERE action = 'report_read'")
        ).scalar_one()
    with engine(platform.settings).begin() as conn:
        # What someone covering their tracks would do: make the read look like another one.
        conn.execute(
            text('UPDATE audit_events SET detail = \'{"kind": "pdf"}\' WHERE seq = :seq'), {"seq": seq}
        )
    broken = CliRunner().invoke(cli, ["audit", "verify"])
    assert broken.exit_code == 1
    assert f"audit record seq {seq}: content changed" in broken.stderr
    check = platform.get("admin", "/api/audit/verify").json()
    assert (check["intact"], check["first_bad"], check["reason"]) == (False, seq, "content changed")
