"""The candidate fails under the trial: it answers with errors, or its container is killed.

Real components throughout: the ``sandbox-trial`` Prefect flow, a Docker sandbox serving the
candidate through the gateway, the MLflow store of the platform home. Each test states the
trial status it must end in, reads the signed report for what happened, checks that MLflow
holds every metric point emitted (before the fault, for the kill), and that nothing of the
sandbox is left on the engine.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from markupsafe import escape

from monitors.base import MetricPoint
from orchestrator.reports import load_report
from orchestrator.reports.signing import PUBLIC_KEY_NAME, verify
from orchestrator.run import run_trial
from orchestrator.settings import Settings
from orchestrator.spec import TrialSpec, parse_spec
from orchestrator.tracking import MetricStreamer, identity
from orchestrator.trial_records import TrialOutcome
from tests.faults.flaky_model import ERRORS, failure_for
from tests.faults.models import save_flaky_model
from tests.integration.models import candidate_model

pytestmark = [pytest.mark.docker, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "trials" / "diabetes-risk.yaml"


def spec_for(name: str, model: Path, rows: int, batch_size: int, concurrency: int = 2) -> TrialSpec:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["name"] = name
    data["model"]["uri"] = str(model)
    data["data"]["synthetic"]["rows"] = rows
    data["resources"] = {"cpus": 1.0, "memory_mb": 1024, "timeout_s": 600}
    data["workload"] = {"batch_size": batch_size, "concurrency": concurrency}
    return parse_spec(data, "test")


def traffic(settings: Settings, trial_id: str) -> list[dict[str, Any]]:
    path = settings.trials_dir / trial_id / "traffic.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def left_behind(docker_client, trial_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    flt = {"label": f"regsandbox.trial_id={trial_id}"}
    return [c.name for c in docker_client.containers.list(all=True, filters=flt)] + [
        n.name for n in docker_client.networks.list(filters=flt)
    ]


class Tally:
    """Every point any streamer accepted, with the wall-clock moment it was accepted."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.points: list[tuple[float, MetricPoint]] = []
        self.workload_started = threading.Event()

    def record(self, points: list[MetricPoint]) -> None:
        now = time.monotonic()
        with self.lock:
            self.points += [(now, p) for p in points]
        if any(p.key.startswith("perf/") for p in points):
            self.workload_started.set()

    def before(self, moment: float) -> Counter:  # type: ignore[type-arg]
        with self.lock:
            return Counter(identity(p) for at, p in self.points if at < moment)


@pytest.fixture()
def tally(monkeypatch: pytest.MonkeyPatch) -> Tally:
    found = Tally()
    original = MetricStreamer.put

    def counted(self: MetricStreamer, points: list[MetricPoint]) -> None:
        original(self, points)
        found.record(points)

    monkeypatch.setattr(MetricStreamer, "put", counted)
    return found


def stored(settings: Settings, run_id: str, keys: set[str]) -> Counter:  # type: ignore[type-arg]
    from mlflow import MlflowClient

    client = MlflowClient(settings.tracking_uri)
    found: Counter = Counter()  # type: ignore[type-arg]
    for key in keys:
        for m in client.get_metric_history(run_id, key):
            found[identity(MetricPoint(m.key, m.value, m.step, m.timestamp))] += 1
    return found


def signed_and_clean(outcome: TrialOutcome, settings: Settings, docker_client) -> Any:  # type: ignore[no-untyped-def]
    report = load_report(outcome.report["json"])
    assert verify(outcome.report["json"], outcome.report["signature"], settings.keys_dir / PUBLIC_KEY_NAME)
    assert report.teardown.verified and outcome.teardown_verified, report.teardown
    assert left_behind(docker_client, outcome.trial_id) == []
    return report


@pytest.mark.parametrize(("fail_tenths", "rows"), [(3, 1000), (9, 400)], ids=["some-errors", "most-errors"])
def test_errors_are_quoted_with_counts_and_the_evidence_marked_incomplete(
    fail_tenths: int,
    rows: int,
    settings: Settings,
    prefect_harness: None,
    docker_client,  # type: ignore[no-untyped-def]
    tally: Tally,
    tmp_path: Path,
) -> None:
    model = save_flaky_model(tmp_path / "flaky", fail_tenths)
    outcome = run_trial(spec_for(f"flaky-{fail_tenths}", model, rows=rows, batch_size=20))
    # Errors from the model are evidence about the model, not a platform fault: the trial completes.
    assert outcome.status == "completed", outcome.error
    report = signed_and_clean(outcome, settings, docker_client)
    evidence = report.evidence
    assert evidence is not None and not evidence.complete

    # The report's counts are exactly what the captured traffic shows, error by error.
    records = [r for r in traffic(settings, outcome.trial_id) if r["origin"] == "evaluation"]
    failed = [r for r in records if r["status"] != 200]
    assert evidence.requests == len(records) and evidence.failed_requests == len(failed) > 0
    assert evidence.cases_sent == evidence.cases_planned == rows
    assert evidence.cases_answered == sum(len(r["case_ids"]) for r in records if r["status"] == 200)
    quoted = {e.message: e for e in evidence.errors}
    assert set(quoted) == set(ERRORS), quoted.keys()
    for message in ERRORS:
        expected = [r for r in failed if message in json.dumps(r["response"])]
        assert quoted[message].requests == len(expected) > 0
        assert quoted[message].cases == sum(len(r["case_ids"]) for r in expected)
        assert quoted[message].status == expected[0]["status"] >= 400

    # The model's own rule says which batches fail: the gateway lost or invented none.
    frame_of = {r["request_id"]: pd.DataFrame(**r["request"]["dataframe_split"]) for r in records}
    predicted = {rid: failure_for(frame, fail_tenths) for rid, frame in frame_of.items()}
    assert {r["request_id"] for r in failed} == {rid for rid, e in predicted.items() if e}

    notes = " ".join(evidence.notes)
    assert "Evidence incomplete" in notes and f"{evidence.cases_answered} of {rows}" in notes
    handful = evidence.cases_answered < report.trial.spec["workload"]["min_group_size"]
    assert ("fewer than the trial's minimum" in notes) == handful
    html = Path(outcome.report["html"]).read_text(encoding="utf-8")
    assert 'id="evidence-caveats"' in html and all(str(escape(message)) in html for message in ERRORS)
    if fail_tenths == 9:
        assert handful, "most-errors must leave too few answered cases for a verdict"

    keys = {p.key for _, p in tally.points}
    assert stored(settings, outcome.mlflow_run_id, keys) == tally.before(time.monotonic() + 1)


def test_the_model_container_killed_mid_workload_is_reported_with_its_evidence_kept(
    settings: Settings,
    prefect_harness: None,
    docker_client,  # type: ignore[no-untyped-def]
    tally: Tally,
    tmp_path: Path,
) -> None:
    model = candidate_model(tmp_path / "candidate")
    spec = spec_for("killed-model", model, rows=3000, batch_size=2, concurrency=1)
    result: dict[str, Any] = {}

    def trial() -> None:
        try:
            result["outcome"] = run_trial(spec)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            result["outcome"] = exc

    runner = threading.Thread(target=trial, name="trial")
    runner.start()
    assert tally.workload_started.wait(timeout=600), "the workload never started"
    (container,) = [
        c
        for c in docker_client.containers.list(filters={"label": "regsandbox.trial_id"})
        if c.labels["regsandbox.trial_id"].startswith("killed-model-") and not c.name.endswith("-probe")
    ]
    killed_at = time.monotonic()  # at the first monitor point: the workload has just begun
    container.kill()  # SIGKILL, as the kernel's OOM killer or an operator would
    runner.join(timeout=600)
    finished_at = time.monotonic()
    assert not runner.is_alive(), "the trial did not finish"
    outcome = result["outcome"]
    assert isinstance(outcome, TrialOutcome), outcome

    # A model that dies is evidence about the model, as one answering with errors is: the trial
    # completes, and its report says the sandbox stopped and how much of the evidence is missing.
    assert outcome.status == "completed", outcome.error
    report = signed_and_clean(outcome, settings, docker_client)
    evidence = report.evidence
    assert evidence is not None and not evidence.complete
    assert evidence.cases_planned == 3000 and 0 < evidence.cases_answered < 3000
    assert all(e.status in (502, 504) for e in evidence.errors), evidence.errors
    notes = " ".join(evidence.notes)
    assert "The model's sandbox stopped during the workload" in notes, notes
    assert f"answered {evidence.cases_answered} of 3000 cases" in notes
    assert "sandbox_stopped" in [e.kind for e in report.events]
    html = Path(outcome.report["html"]).read_text(encoding="utf-8")
    assert "sandbox stopped during the workload" in html
    # The stop is noticed within seconds, not after every remaining request has timed out.
    assert finished_at - killed_at < 90, f"the trial took {finished_at - killed_at:.0f}s to notice"

    # Every point accepted before the kill is in MLflow, once.
    before = tally.before(killed_at)
    assert sum(before.values()) > 0
    keys = {p.key for _, p in tally.points}
    held = stored(settings, outcome.mlflow_run_id, keys)
    assert not (before - held), f"{sum((before - held).values())} points lost"
    assert all(n == 1 for n in held.values()), "a point was stored twice"
    print(
        f"model container killed: trial reported {finished_at - killed_at:.1f} s later; "
        f"{evidence.cases_answered} of 3000 cases answered; {sum(before.values())} points kept"
    )
