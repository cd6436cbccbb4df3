"""MLflow plumbing: where runs go, and a background streamer that batches metric points.

Metric points never reach MLflow one call per point (about 16 points/s against a server);
they are queued, grouped and sent with ``log_batch`` from a background thread that outlasts
an outage of the tracking server without losing or duplicating a point.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from monitors.base import MetricPoint
from orchestrator.mlflow_transport import (  # noqa: F401 - re-exported for callers of tracking
    ClientTransport,
    Identity,
    RestTransport,
    Transport,
    identity,
    transport_for,
)
from orchestrator.settings import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient

logger = logging.getLogger(__name__)


# Errors that no retry can fix: the store refuses the data itself (a bad key or value, a deleted
# or finished run). Anything else (connection refused, timeout, 5xx) is the store being away.
PERMANENT_ERRORS = {"INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST", "INVALID_STATE", "BAD_REQUEST"}

# MLflow's REST client retries a failed call 7 times with exponential back-off and waits up to
# 120 s for each answer: minutes inside one call while a server is down. The platform's own calls
# get bounded defaults (the operator's environment wins); the streamer passes its own per call.
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "30", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3"}


def configure_mlflow(settings: Settings) -> None:
    """Point the mlflow client library at the platform's tracking store and registry."""
    import mlflow

    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    settings.ensure_dirs()
    # mlflow.set_tracking_uri also exports MLFLOW_TRACKING_URI, which Settings reads as the
    # user's choice: keep the environment as the user left it, or one home's store would leak
    # into every later Settings of the process.
    saved: dict[str, str | None] = {
        k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    }
    try:
        mlflow.set_tracking_uri(settings.tracking_uri)
        mlflow.set_registry_uri(settings.tracking_uri)
    finally:
        for key, previous in saved.items():
            if previous is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = previous


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


class StreamerStats(BaseModel):
    """What a streamer has done so far (points unless the name says otherwise)."""

    model_config = ConfigDict(frozen=True)

    queued: int  # accepted by put
    sent: int  # confirmed stored, including points found already stored after an ambiguous failure
    batches: int  # successful log_batch calls
    failed_calls: int  # calls (sends or read-backs) that raised
    retried: int  # points stored only after at least one failed attempt
    already_stored: int  # points a read-back found stored although their send had failed
    rejected: int  # points the store refused as invalid (never retried)
    pending: int  # queued or in flight, not yet stored
    last_error: str | None
    closed: bool


_COUNTERS = ("queued", "sent", "batches", "failed_calls", "retried", "already_stored", "rejected", "inflight")


class MetricStreamer:
    """Send metric points to one MLflow run from a background thread, in batches.

    ``put`` never calls MLflow: points go into a bounded buffer (a full buffer blocks the
    producer, the back-pressure we want rather than dropping evidence). The thread sends up to
    ``max_batch`` points at once, as soon as that many are waiting or ``flush_interval_s`` after
    the oldest arrived. A failed send is retried with back-off for as long as it takes, with
    the same points: before each retry the thread reads back which of them the store already
    holds (a call can time out after the server stored its batch) and resends only the others,
    identified by (key, step, timestamp, value). MLflow's SQL stores keep one row per identity,
    which also covers a batch committed after the read-back; a store without that guarantee
    could then hold a point twice. ``close`` flushes everything still queued.
    """

    def __init__(
        self,
        client: MlflowClient | None,
        run_id: str,
        max_batch: int = 1000,
        flush_interval_s: float = 0.5,
        max_queue: int = 100_000,
        request_timeout_s: float = 15.0,
        max_backoff_s: float = 5.0,
        transport: Transport | None = None,
    ) -> None:
        if transport is None:
            if client is None:
                raise ValueError("MetricStreamer needs an MlflowClient or a transport")
            transport = transport_for(client, request_timeout_s)
        self._transport = transport
        self._run_id = run_id
        self._max_batch = max(1, min(max_batch, 1000))  # MLflow's per-request limit for metrics
        self._interval = flush_interval_s
        self._capacity = max(max_queue, self._max_batch)
        self._max_backoff = max_backoff_s
        self._buffer: deque[MetricPoint] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._abandon = threading.Event()
        self._counts = dict.fromkeys(_COUNTERS, 0)
        self._last_error: str | None = None
        self._thread = threading.Thread(target=self._loop, name=f"mlflow-streamer-{run_id[:8]}", daemon=True)
        self._thread.start()

    # -- producer side ------------------------------------------------------------------------

    def put(self, points: list[MetricPoint]) -> None:
        """Queue points; blocks while the buffer is full."""
        with self._cond:
            if self._closing:
                raise RuntimeError("streamer is closed")
            start = 0
            while start < len(points):
                while len(self._buffer) >= self._capacity and not self._abandon.is_set():
                    self._cond.wait(0.5)
                if self._abandon.is_set():
                    raise RuntimeError("streamer gave up: the tracking store stayed unreachable")
                room = self._capacity - len(self._buffer)
                self._buffer.extend(points[start : start + room])
                self._counts["queued"] += min(room, len(points) - start)
                start += room
                self._cond.notify_all()

    def stats(self) -> StreamerStats:
        with self._cond:
            c = self._counts
            pending = len(self._buffer) + c["inflight"]
            return StreamerStats(
                queued=c["queued"],
                sent=c["sent"],
                batches=c["batches"],
                failed_calls=c["failed_calls"],
                retried=c["retried"],
                already_stored=c["already_stored"],
                rejected=c["rejected"],
                pending=pending,
                last_error=self._last_error,
                closed=self._closing,
            )

    @property
    def sent(self) -> int:
        return self._counts["sent"]

    @property
    def batches(self) -> int:
        return self._counts["batches"]

    @property
    def failures(self) -> int:
        return self._counts["failed_calls"]

    def close(self, timeout_s: float = 60.0) -> StreamerStats:
        """Flush every queued point and stop the thread.

        When the store is still unreachable after ``timeout_s``, the thread gives up: the points
        it could not store are counted in ``pending`` and logged, and ``close`` returns.
        """
        with self._cond:
            already, self._closing = self._closing, True
            self._cond.notify_all()
        if already and not self._thread.is_alive():
            return self.stats()  # closed before (teardown closes again after the monitor step)
        self._thread.join(timeout=timeout_s)
        if self._thread.is_alive():
            self._abandon.set()
            with self._cond:
                self._cond.notify_all()
            self._thread.join(timeout=self._transport.timeout_s + 1.0)
        final = self.stats()
        if final.pending:
            logger.error(
                "MLflow run %s: %d metric point(s) not stored after %.0fs (last error: %s)",
                self._run_id,
                final.pending,
                timeout_s,
                final.last_error,
            )
        return final

    # -- the sending thread -------------------------------------------------------------------

    def _take(self) -> list[MetricPoint] | None:
        """The next batch: full, or due by time, or the rest when closing; None when done."""
        with self._cond:
            while not self._buffer and not self._closing:
                self._cond.wait()
            if not self._buffer:
                return None
            due = time.monotonic() + self._interval
            while len(self._buffer) < self._max_batch and not self._closing:
                left = due - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            n = min(self._max_batch, len(self._buffer))
            chunk = [self._buffer.popleft() for _ in range(n)]
            self._counts["inflight"] = n
            self._cond.notify_all()
            return chunk

    def _loop(self) -> None:
        while not self._abandon.is_set():
            chunk = self._take()
            if chunk is None:
                return
            self._deliver(chunk)

    def _count(self, **changes: int) -> None:
        with self._cond:
            for name, delta in changes.items():
                self._counts[name] += delta

    def _failed(self, exc: Exception, what: str, points: int, delay: float) -> None:
        self._last_error = f"{type(exc).__name__}: {exc}"[:500]
        self._count(failed_calls=1)
        logger.warning("MLflow %s failed (%s); %d point(s) wait, retry in %.1fs", what, exc, points, delay)

    def _deliver(self, chunk: list[MetricPoint]) -> None:
        """Store every point of ``chunk`` exactly once, however long the store stays away."""
        work = [chunk]  # sub-batches; a batch the store refuses as invalid is split to isolate the bad point
        while work and not self._abandon.is_set():
            points = work.pop()
            delay, failed = 0.2, False
            while points and not self._abandon.is_set():
                if failed:
                    try:
                        stored = self._transport.stored(self._run_id, points)
                    except Exception as exc:  # the store is still away: wait, then look again
                        self._failed(exc, "read-back", len(points), delay)
                        self._abandon.wait(delay)
                        delay = min(delay * 2, self._max_backoff)
                        continue
                    kept = [p for p in points if identity(p) not in stored]
                    self._count(sent=len(points) - len(kept), already_stored=len(points) - len(kept))
                    self._count(inflight=-(len(points) - len(kept)))
                    points = kept
                    if not points:
                        break
                try:
                    self._transport.log(self._run_id, points)
                except Exception as exc:
                    if getattr(exc, "error_code", None) in PERMANENT_ERRORS:
                        self._refused(points, exc, work)
                        points = []
                        break
                    self._failed(exc, "log_batch", len(points), delay)
                    failed = True
                    self._abandon.wait(delay)
                    delay = min(delay * 2, self._max_backoff)
                    continue
                self._count(
                    sent=len(points), batches=1, inflight=-len(points), retried=len(points) if failed else 0
                )
                points = []

    def _refused(self, points: list[MetricPoint], exc: Exception, work: list[list[MetricPoint]]) -> None:
        if len(points) == 1:
            self._last_error = f"{type(exc).__name__}: {exc}"[:500]
            self._count(rejected=1, inflight=-1)
            logger.error("MLflow refused metric point %s: %s", points[0], exc)
            return
        half = len(points) // 2
        work.extend([points[half:], points[:half]])
