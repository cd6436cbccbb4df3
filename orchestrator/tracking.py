"""MLflow plumbing: where runs go, and a background streamer that batches metric points.

Metric points never reach MLflow one call per point (about 16 points/s against a server);
they are queued, grouped and sent with ``log_batch`` from a background thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import TYPE_CHECKING

from monitors.base import MetricPoint
from orchestrator.settings import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient

logger = logging.getLogger(__name__)


def configure_mlflow(settings: Settings) -> None:
    """Point the mlflow client library at the platform's tracking store and registry."""
    import mlflow

    settings.ensure_dirs()
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)


def ensure_experiment(settings: Settings, name: str) -> str:
    """Return the id of experiment ``name``, creating it with artefacts under the home dir.

    With a local SQLite store MLflow would otherwise put artefacts in ``./mlruns`` relative to
    whatever directory the process happens to run in.
    """
    import mlflow

    configure_mlflow(settings)
    client = mlflow.MlflowClient()
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return str(existing.experiment_id)
    location = None
    if settings.tracking_uri.startswith("sqlite:"):
        location = (settings.artifacts_dir / name).as_uri()
    return str(client.create_experiment(name, artifact_location=location))


class MetricStreamer:
    """Send metric points to one MLflow run from a background thread, in batches.

    ``put`` never calls MLflow: points go into a bounded queue (a full queue blocks the
    producer, which is the back-pressure we want rather than dropping evidence). The thread
    sends a batch when ``max_batch`` points are waiting or ``flush_interval_s`` has passed.
    A failed send is retried with back-off, with the same batch, so nothing is lost when the
    tracking server is briefly unavailable; ``close`` flushes everything still queued.
    """

    def __init__(
        self,
        client: MlflowClient,
        run_id: str,
        max_batch: int = 1000,
        flush_interval_s: float = 0.5,
        max_queue: int = 100_000,
    ) -> None:
        self._client = client
        self._run_id = run_id
        self._max_batch = min(max_batch, 1000)  # MLflow's per-request limit for metrics
        self._interval = flush_interval_s
        self._queue: queue.Queue[MetricPoint | None] = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._loop, name=f"mlflow-streamer-{run_id[:8]}", daemon=True)
        self.sent = 0
        self.batches = 0
        self.failures = 0
        self._closed = False
        self._thread.start()

    def put(self, points: list[MetricPoint]) -> None:
        if self._closed:
            raise RuntimeError("streamer is closed")
        for point in points:
            self._queue.put(point)

    def _loop(self) -> None:
        pending: list[MetricPoint] = []
        deadline = time.monotonic() + self._interval
        done = False
        while not done:
            timeout = max(0.0, deadline - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
                if item is None:
                    done = True
                else:
                    pending.append(item)
            except queue.Empty:
                pass
            if pending and (done or len(pending) >= self._max_batch or time.monotonic() >= deadline):
                while pending:
                    chunk, pending = pending[: self._max_batch], pending[self._max_batch :]
                    self._send(chunk)
            if time.monotonic() >= deadline:
                deadline = time.monotonic() + self._interval

    def _send(self, chunk: list[MetricPoint]) -> None:
        from mlflow.entities import Metric

        metrics = [Metric(p.key, p.value, p.timestamp_ms, p.step) for p in chunk]
        delay = 0.2
        while True:
            try:
                self._client.log_batch(self._run_id, metrics=metrics, synchronous=True)
                self.sent += len(metrics)
                self.batches += 1
                return
            except Exception as exc:  # the store may be down: wait and resend the same batch
                self.failures += 1
                logger.warning(
                    "MLflow unavailable (%s); retrying %d points in %.1fs", exc, len(metrics), delay
                )
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def close(self, timeout_s: float = 60.0) -> None:
        """Flush every queued point and stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=timeout_s)
