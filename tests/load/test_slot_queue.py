"""More trials than REGSANDBOX_MAX_SANDBOXES allows, all at once: they queue, then all complete.

Six trials start together against a limit of two sandboxes. The slots are the real host-wide
``flock`` slots (orchestrator/slots.py); the sandbox is the FAKE backend of tests/unit (what is
tested is the queue, not isolation), everything else is the real lifecycle. No trial fails for
lack of a slot, never more than two sandboxes exist at once, and a trial's time in the queue
does not count against its own timeout (each trial's timeout is shorter than the queue).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from orchestrator.lifecycle import run_lifecycle
from orchestrator.settings import Settings, get_settings
from orchestrator.trial_records import TrialOutcome
from tests.faults.conftest import fake_model, lifecycle_settings  # noqa: F401 - pytest fixtures
from tests.unit.fake_backend import FakeBackend
from tests.unit.test_lifecycle import spec_for

pytestmark = pytest.mark.slow

TRIALS, LIMIT = 6, 2
WINDOW_S, MARGIN_S = 4.0, 6


def test_over_limit_trials_queue_then_all_complete(
    lifecycle_settings: Settings,  # noqa: F811
    fake_model: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REGSANDBOX_MAX_SANDBOXES", str(LIMIT))
    get_settings.cache_clear()
    settings = get_settings()
    assert settings.max_sandboxes == LIMIT

    # Each trial holds its sandbox through a developer window, so the queue is long.
    spec = spec_for(fake_model)
    spec = spec.model_copy(
        update={"workload": spec.workload.model_copy(update={"developer_window_s": WINDOW_S})}
    )
    run_lifecycle(spec, "t-queue-warm", settings, backend="fake")  # imports and caches, once
    # One trial alone: how long a trial lasts here, to set a timeout the queue exceeds.
    started = time.monotonic()
    alone = run_lifecycle(spec, "t-queue-alone", settings, backend="fake")
    single_s = time.monotonic() - started
    assert alone.status == "completed", alone.error

    peak, lock = [0], threading.Lock()
    original_provision = FakeBackend._provision

    def counted(self, trial_id, resources, labels):  # type: ignore[no-untyped-def]
        sandbox = original_provision(self, trial_id, resources, labels)
        with lock:
            peak[0] = max(peak[0], len(FakeBackend.sandboxes))
        return sandbox

    monkeypatch.setattr(FakeBackend, "_provision", counted)
    # A trial's own time plus MARGIN_S: the last in the queue waits longer than the margin, so
    # had its wait counted against its timeout, it would fail.
    timeout = int(single_s) + MARGIN_S
    spec = spec.model_copy(update={"resources": spec.resources.model_copy(update={"timeout_s": timeout})})

    def one(n: int) -> TrialOutcome:
        return run_lifecycle(spec, f"t-queue-{n}", settings, backend="fake")

    began = time.monotonic()
    with ThreadPoolExecutor(TRIALS) as pool:
        outcomes = list(pool.map(one, range(TRIALS)))
    wall = time.monotonic() - began

    failures = {o.trial_id: o.error for o in outcomes if o.status != "completed"}
    assert not failures, failures
    assert peak[0] <= LIMIT, f"{peak[0]} sandboxes at once, limit {LIMIT}"
    assert not FakeBackend.sandboxes
    from orchestrator.reports import load_report

    queued = sorted(
        e.detail.get("queued_s", 0.0)
        for o in outcomes
        for e in load_report(o.report["json"]).events
        if e.kind == "provisioned"
    )
    assert queued[-1] > MARGIN_S, f"the queue was too short to test the timeout: {queued}"
    print(
        f"{TRIALS} trials, {LIMIT} slots: all completed in {wall:.1f} s (one alone {single_s:.1f} s); "
        f"queued s per trial {[round(q, 1) for q in queued]}; peak sandboxes {peak[0]}; timeout {timeout} s"
    )
