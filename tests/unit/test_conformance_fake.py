"""The conformance suite runs against any registered backend: here the FAKE one, in seconds.

The fake (tests/unit/fake_backend.py) isolates nothing and keeps its sandboxes in memory; it
passes every check but the orphan sweep, which needs sandboxes that outlive the process that
made them, and is declared a known failure with that reason. The real backends run the same
suite against a real engine in tests/integration/test_backend_contract.py.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.backends import get_backend, register_backend
from orchestrator.backends.conformance import CHECKS, conformance_model, run_conformance
from orchestrator.settings import Settings
from tests.unit.fake_backend import FakeBackend

KNOWN = {"reap-orphans": "in-memory sandboxes die with the process that made them"}


def test_the_fake_backend_passes_the_conformance_suite(settings: Settings, tmp_path: Path) -> None:
    register_backend("fake", FakeBackend)
    model = conformance_model(tmp_path / "model")
    results = run_conformance(get_backend("fake", settings), model, settings.home, known_failures=KNOWN)
    assert [r.check for r in results] == list(CHECKS)
    unexpected = [r for r in results if not r.passed and not r.known_failure]
    assert not unexpected, unexpected
    orphan = next(r for r in results if r.check == "reap-orphans")
    assert not orphan.passed and orphan.known_failure == KNOWN["reap-orphans"]
    assert not FakeBackend.sandboxes
