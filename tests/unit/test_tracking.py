"""The MLflow metric streamer against a real (SQLite-backed) MLflow tracking store."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from monitors.base import MetricPoint
from orchestrator.settings import Settings
from orchestrator.tracking import MetricStreamer, RestTransport, ensure_experiment, identity, transport_for


def test_streamer_batches_every_point_and_flushes_on_close(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    settings = Settings(home=tmp_path)
    experiment = ensure_experiment(settings, "streamer-test")
    client = MlflowClient(settings.tracking_uri)
    run_id = client.create_run(experiment).info.run_id
    streamer = MetricStreamer(client, run_id, max_batch=1000, flush_interval_s=0.2)
    for step in range(250):
        streamer.put(
            [
                MetricPoint("perf/auroc", step / 250, step),
                MetricPoint("latency/p95_ms", float(step), step),
                MetricPoint("ops/error_rate", 0.0, step),
                MetricPoint("ops/requests", float(step), step),
            ]
        )
    streamer.close()

    assert streamer.sent == 1000
    assert streamer.batches <= 10  # batched, never one call per point
    history = client.get_metric_history(run_id, "perf/auroc")
    assert sorted(m.step for m in history) == list(range(250))
    assert len(client.get_metric_history(run_id, "ops/requests")) == 250
    assert (tmp_path / "mlflow.db").is_file()


def test_experiment_artifacts_live_under_home(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    settings = Settings(home=tmp_path)
    experiment = ensure_experiment(settings, "where")
    assert ensure_experiment(settings, "where") == experiment
    location = MlflowClient(settings.tracking_uri).get_experiment(experiment).artifact_location
    assert location.startswith((tmp_path / "mlartifacts").as_uri())


# --- outages, ambiguous failures and refusals, against a store that misbehaves on demand ------------


class MlflowLikeError(Exception):
    def __init__(self, message: str, error_code: str) -> None:
        super().__init__(message)
        self.error_code = error_code


class FlakyStore:
    """An in-memory stand-in for a tracking store: it can be down, or store a batch and then time out."""

    timeout_s = 0.1

    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.down = threading.Event()
        self.store_then_time_out = 0
        self.calls = 0

    def log(self, run_id: str, points: list[MetricPoint]) -> None:
        self.calls += 1
        if self.down.is_set():
            raise ConnectionError("connection refused")
        if any(p.key == "bad" for p in points):
            raise MlflowLikeError("invalid metric", "INVALID_PARAMETER_VALUE")
        self.rows.extend(identity(p) for p in points)
        if self.store_then_time_out:
            self.store_then_time_out -= 1
            raise TimeoutError("read timed out")  # stored, but the client never heard

    def stored(self, run_id: str, points: list[MetricPoint]) -> set:
        if self.down.is_set():
            raise ConnectionError("connection refused")
        return set(self.rows)


def points(n: int, key: str = "perf/auroc", start: int = 0) -> list[MetricPoint]:
    return [
        MetricPoint(key, float(i) / 7, i, timestamp_ms=1_700_000_000_000 + i) for i in range(start, start + n)
    ]


def streamer(store: FlakyStore, **options) -> MetricStreamer:
    options = {"flush_interval_s": 0.05, "max_backoff_s": 0.1, **options}
    return MetricStreamer(None, "run-under-test", transport=store, **options)


def test_points_wait_out_an_outage_and_arrive_once() -> None:
    store = FlakyStore()
    s = streamer(store)
    s.put(points(300))
    store.down.set()
    s.put(points(700, start=300))
    deadline = time.monotonic() + 5
    while s.stats().failed_calls < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert s.stats().pending > 0
    store.down.clear()
    stats = s.close(timeout_s=10)
    assert sorted(store.rows) == sorted(identity(p) for p in points(1000))
    assert (stats.sent, stats.pending, stats.rejected) == (1000, 0, 0)
    assert stats.failed_calls >= 3 and stats.retried > 0 and stats.last_error


def test_a_batch_stored_before_its_call_failed_is_not_sent_again() -> None:
    store = FlakyStore()
    store.store_then_time_out = 1
    s = streamer(store)
    s.put(points(50))
    stats = s.close(timeout_s=5)
    assert len(store.rows) == 50 == len(set(store.rows))
    assert (stats.sent, stats.already_stored, stats.retried, stats.failed_calls) == (50, 50, 0, 1)


def test_a_refused_point_is_isolated_and_the_rest_stored() -> None:
    store = FlakyStore()
    s = streamer(store)
    batch = points(10)
    batch[6] = MetricPoint("bad", 1.0, 6, timestamp_ms=1)
    s.put(batch)
    stats = s.close(timeout_s=5)
    assert sorted(store.rows) == sorted(identity(p) for p in batch if p.key != "bad")
    assert (stats.sent, stats.rejected, stats.pending) == (9, 1, 0)


def test_batches_by_size_and_by_time() -> None:
    store = FlakyStore()
    s = streamer(store, max_batch=400, flush_interval_s=0.1)
    s.put(points(1000))
    deadline = time.monotonic() + 5
    while s.stats().sent < 1000 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert s.stats().batches == 3  # 400 + 400 now, the last 200 once the interval passed
    s.put(points(1, start=1000))
    time.sleep(0.5)
    assert s.stats().sent == 1001  # sent by time, before close
    s.close()


def test_close_gives_up_on_a_store_that_never_returns() -> None:
    store = FlakyStore()
    store.down.set()
    s = streamer(store)
    s.put(points(20))
    started = time.monotonic()
    stats = s.close(timeout_s=0.5)
    assert time.monotonic() - started < 3
    assert (stats.sent, stats.pending, stats.closed) == (0, 20, True)
    with pytest.raises(RuntimeError, match="closed"):
        s.put(points(1))


def test_a_full_buffer_holds_the_producer_back() -> None:
    store = FlakyStore()
    store.down.set()
    s = streamer(store, max_batch=10, max_queue=10)
    s.put(points(20))  # 10 in flight, 10 buffered: the buffer is full
    producer = threading.Thread(target=s.put, args=(points(5, start=20),), daemon=True)
    producer.start()
    producer.join(0.3)
    assert producer.is_alive() and s.stats().queued == 20
    store.down.clear()
    producer.join(5)
    assert not producer.is_alive()
    assert s.close(timeout_s=5).sent == 25


def test_rest_transport_is_chosen_for_a_tracking_server() -> None:
    from mlflow import MlflowClient

    assert isinstance(transport_for(MlflowClient("http://127.0.0.1:1"), 2.0), RestTransport)
