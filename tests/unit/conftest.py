"""Fixtures shared by the report tests: the sample report, and the PDF worker count."""

from __future__ import annotations

import pytest

from orchestrator.reports import ExitReport
from orchestrator.reports.sample import sample_report
from orchestrator.settings import get_settings


@pytest.fixture(scope="module")
def report() -> ExitReport:
    return sample_report()


@pytest.fixture()
def workers(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    def use(count: int) -> None:
        monkeypatch.setenv("REGSANDBOX_PDF_WORKERS", str(count))
        get_settings.cache_clear()

    yield use
    get_settings.cache_clear()
