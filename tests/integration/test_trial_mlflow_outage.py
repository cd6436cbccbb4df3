"""A whole trial whose MLflow tracking server goes away while the workload is streaming.

Real components throughout: the ``sandbox-trial`` Prefect flow, a Docker sandbox serving the
candidate model, and a real ``mlflow server`` subprocess as the tracking store. When the first
monitor points of the workload are queued, the server is terminated; it stays down while more
points are emitted, then a new server starts on the same port and store. The test keeps its own
tally of every point the trial hands to its streamer and checks that MLflow holds each of them
exactly once when the run ends.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from monitors.base import MetricPoint
from orchestrator.reports import load_report
from orchestrator.run import run_trial
from orchestrator.settings import Settings, get_settings
from orchestrator.spec import TrialSpec, parse_spec
from orchestrator.tracking import MetricStreamer, identity
from orchestrator.trial_records import TrialOutcome
from tests.integration.mlflow_server import mlflow_server
from tests.integration.models import candidate_model

pytestmark = [pytest.mark.docker, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "trials" / "diabetes-risk.yaml"


class Tally:
    """Every point handed to any streamer, and a signal when the workload's first one arrives."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.points: list[MetricPoint] = []
        self.workload_started = threading.Event()

    def record(self, points: list[MetricPoint]) -> None:
        with self.lock:
            self.points.extend(points)
        if any(not p.key.startswith("resources/") for p in points):
            self.workload_started.set()

    def count(self) -> int:
        with self.lock:
            return len(self.points)


def spec_for(model_uri: Path) -> TrialSpec:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["model"]["uri"] = str(model_uri)
    # Long enough (2,000 requests, one at a time) that the workload is still emitting its own
    # evidence through the whole 6 s outage, however fast the gateway and the model answer.
    data["data"]["synthetic"]["rows"] = 4000
    data["workload"] = {
        **data.get("workload", {}),
        "batch_size": 2,
        "concurrency": 1,
        "developer_window_s": 10,
    }
    return parse_spec(data, "test")


def stored_identities(url: str, run_id: str, keys: set[str]) -> Counter:  # type: ignore[type-arg]
    from mlflow import MlflowClient

    client = MlflowClient(url)
    stored: Counter = Counter()  # type: ignore[type-arg]
    for key in keys:
        for m in client.get_metric_history(run_id, key):
            stored[identity(MetricPoint(m.key, m.value, m.step, m.timestamp))] += 1
    return stored


def test_a_trial_ends_with_every_point_despite_a_tracking_server_outage(
    settings: Settings,
    prefect_harness: None,
    docker_client,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tally = Tally()
    original_put = MetricStreamer.put

    def counted_put(self: MetricStreamer, points: list[MetricPoint]) -> None:
        original_put(self, points)  # counted only once the streamer has accepted them
        tally.record(points)

    monkeypatch.setattr(MetricStreamer, "put", counted_put)
    candidate = candidate_model(tmp_path / "candidate")

    with mlflow_server(tmp_path / "store") as server:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
        get_settings.cache_clear()
        assert get_settings().tracking_uri == server.url

        result: dict[str, TrialOutcome | BaseException] = {}

        def trial() -> None:
            try:
                result["outcome"] = run_trial(spec_for(candidate))
            except BaseException as exc:  # noqa: BLE001 - handed to the test thread
                result["outcome"] = exc

        runner = threading.Thread(target=trial, name="trial")
        runner.start()
        assert tally.workload_started.wait(timeout=600), "the workload never started streaming"

        server.stop()
        down_at = tally.count()
        time.sleep(6)  # the workload and resource sampler keep emitting into the void
        emitted_while_down = tally.count() - down_at
        server.start()  # a new server on the same port and store

        runner.join(timeout=900)
        assert not runner.is_alive(), "the trial did not finish"
        outcome = result["outcome"]
        assert isinstance(outcome, TrialOutcome), outcome
        assert outcome.status == "completed", outcome.error

        report = load_report(outcome.report["json"])
        (monitored,) = [e.detail for e in report.events if e.kind == "monitored"]
        # The streamer did meet the outage, and recovered from it.
        assert monitored["failed_calls"] >= 1
        assert monitored["pending"] == 0 and monitored["rejected"] == 0
        assert emitted_while_down >= 100  # the workload's own evidence, not only resource samples

        emitted = Counter(identity(p) for p in tally.points)
        print(
            f"emitted {sum(emitted.values())} points, {emitted_while_down} while the server was down; "
            f"streamer: {monitored['failed_calls']} failed calls, {monitored['retried']} retried, "
            f"{monitored['already_stored']} found already stored"
        )
        assert monitored["queued"] == sum(emitted.values())
        stored = stored_identities(server.url, outcome.mlflow_run_id, {p.key for p in tally.points})
        missing = emitted - stored
        duplicated = stored - emitted
        assert not missing, f"{sum(missing.values())} points lost, e.g. {list(missing)[:3]}"
        assert not duplicated, f"{sum(duplicated.values())} points stored twice, e.g. {list(duplicated)[:3]}"
