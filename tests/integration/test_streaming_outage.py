"""The metric streamer against a real MLflow tracking server that goes away in the middle of a trial.

The server is a real ``mlflow server`` subprocess (SQLite backend, artefacts under the test's
tmp dir, a free port on 127.0.0.1). It is terminated while points keep coming, then a new server
is started on the same port and store; every point must end up in MLflow exactly once.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from monitors.base import MetricPoint
from orchestrator.tracking import MetricStreamer, RestTransport, identity
from tests.integration.mlflow_server import mlflow_server

pytestmark = pytest.mark.slow

KEYS = ("perf/auroc", "perf/brier", "fairness/auroc_gap/sex", "latency/p95_ms", "drift/max_psi")


def new_run(url: str) -> str:
    from mlflow import MlflowClient

    client = MlflowClient(url)
    experiment = client.create_experiment(f"outage-{time.time_ns()}")
    return str(client.create_run(experiment).info.run_id)


def emit(streamer: MetricStreamer, steps: range, pause_s: float = 0.0) -> None:
    for step in steps:
        streamer.put([MetricPoint(key, step / 1000 + i, step) for i, key in enumerate(KEYS)])
        if pause_s:
            time.sleep(pause_s)


def wait_for(condition, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def assert_every_point_once(url: str, run_id: str, steps: int) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(url)
    for key in KEYS:
        history = client.get_metric_history(run_id, key)
        got = sorted(m.step for m in history)
        assert got == list(range(steps)), f"{key}: {len(got)} points for {steps} steps"


def test_points_survive_a_server_outage_without_loss_or_duplicates(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    with mlflow_server(tmp_path / "store") as server:
        run_id = new_run(server.url)
        streamer = MetricStreamer(
            MlflowClient(server.url), run_id, flush_interval_s=0.1, request_timeout_s=5.0, max_backoff_s=1.0
        )
        emit(streamer, range(0, 100), pause_s=0.002)
        wait_for(lambda: streamer.stats().sent >= 300)

        server.stop()  # mid-stream: points keep coming while nothing answers
        emit(streamer, range(100, 200), pause_s=0.002)
        wait_for(lambda: streamer.stats().failed_calls >= 2)
        assert streamer.stats().pending > 0

        server.start()  # a new server on the same port and store
        emit(streamer, range(200, 300))
        stats = streamer.close(timeout_s=120)

        assert (stats.queued, stats.sent, stats.pending, stats.rejected) == (1500, 1500, 0, 0)
        assert stats.retried + stats.already_stored > 0
        assert_every_point_once(server.url, run_id, 300)


class OneShortTimeout(RestTransport):
    """The first send times out on the client while the server goes on to store the batch.

    The read timeout is far shorter than the server needs; the transport then waits until the
    batch is visible in the store before reporting the failure, which is exactly "the server
    stored it, the client never heard".
    """

    def __init__(self, url: str) -> None:
        from mlflow.utils.rest_utils import MlflowHostCreds

        super().__init__(lambda: MlflowHostCreds(url), timeout_s=10.0)
        self.first = True

    def log(self, run_id: str, points: list[MetricPoint]) -> None:
        if not self.first:
            return super().log(run_id, points)
        self.first = False
        normal, self.timeout_s = self.timeout_s, 0.02
        try:
            super().log(run_id, points)
        except Exception:
            self.timeout_s = normal
            wanted = {identity(p) for p in points}
            wait_for(lambda: wanted <= self.stored(run_id, points), timeout_s=60)
            raise
        raise AssertionError("the short timeout did not fire")


def test_a_batch_that_timed_out_after_being_stored_is_not_duplicated(tmp_path: Path) -> None:
    with mlflow_server(tmp_path / "store") as server:
        run_id = new_run(server.url)
        streamer = MetricStreamer(None, run_id, transport=OneShortTimeout(server.url))
        emit(streamer, range(0, 200))  # a full batch of 1000 points goes first
        stats = streamer.close(timeout_s=60)
        # The read-back found the batch stored: nothing was sent twice.
        assert (stats.failed_calls, stats.already_stored, stats.batches) == (1, 1000, 0)
        assert (stats.sent, stats.pending) == (1000, 0)
        assert_every_point_once(server.url, run_id, 200)
