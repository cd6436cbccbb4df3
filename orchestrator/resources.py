"""Sample a sandbox's resource use while the trial runs, and notice when it is hurt.

A background thread asks the backend for stats about once a second, streams them as
metric points (``resources/cpu_percent``, ``resources/memory_mb``, ``resources/pids``,
``resources/oom_events``) and turns changes of state into isolation events: the model
server OOM-killed, or no longer running. Those events go into the trial's audit trail and
the exit report, because a regulator needs to see that a limit was hit, not only that it
was set.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from monitors.base import MetricPoint
from orchestrator.backends import ResourceStats, Sandbox, SandboxBackend

logger = logging.getLogger(__name__)


class ResourceSampler:
    def __init__(
        self,
        backend: SandboxBackend,
        sandbox: Sandbox,
        emit: Callable[[list[MetricPoint]], None],
        event: Callable[..., None],
        interval_s: float = 1.0,
    ) -> None:
        self._backend = backend
        self._sandbox = sandbox
        self._emit = emit
        self._event = event
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"resources-{sandbox.trial_id}", daemon=True)
        self.samples = 0
        self.peak_memory_bytes = 0
        self.peak_pids = 0
        self.oom_events = 0
        self.running = True
        self._last_cpu: tuple[float, float] | None = None

    def start(self) -> ResourceSampler:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self._interval)

    def sample(self) -> ResourceStats | None:
        try:
            stats = self._backend.stats(self._sandbox)
        except Exception as exc:  # the engine may be busy; a missed sample is not a trial failure
            logger.debug("resource sample failed: %s", exc)
            return None
        self.samples += 1
        step = self.samples
        now = time.monotonic()
        points = []
        if stats.cpu_seconds is not None:
            if self._last_cpu is not None and now > self._last_cpu[1]:
                percent = (stats.cpu_seconds - self._last_cpu[0]) / (now - self._last_cpu[1]) * 100.0
                points.append(MetricPoint("resources/cpu_percent", max(percent, 0.0), step))
            self._last_cpu = (stats.cpu_seconds, now)
        elif stats.cpu_percent is not None:
            points.append(MetricPoint("resources/cpu_percent", stats.cpu_percent, step))
        if stats.memory_bytes is not None:
            self.peak_memory_bytes = max(self.peak_memory_bytes, stats.memory_bytes)
            points.append(MetricPoint("resources/memory_mb", stats.memory_bytes / 2**20, step))
        if stats.pids is not None:
            self.peak_pids = max(self.peak_pids, stats.pids)
            points.append(MetricPoint("resources/pids", float(stats.pids), step))
        if stats.oom_killed and not self.oom_events:
            self.oom_events = 1
            self._event("isolation_event", event="oom_killed", detail="the model server hit its memory limit")
        if not stats.running and self.running:
            self.running = False
            self._event(
                "isolation_event", event="server_exited", detail="the model server is no longer running"
            )
        points.append(MetricPoint("resources/oom_events", float(self.oom_events), step))
        self._emit(points)
        return stats

    def stop(self) -> dict[str, Any]:
        """Stop sampling, take one last sample, and return the peaks for the report; idempotent."""
        if not self._stop.is_set():
            self._stop.set()
            if self._thread.is_alive():
                self._thread.join(timeout=5)
            self.sample()
        return {
            "resources/peak_memory_mb": self.peak_memory_bytes / 2**20 if self.peak_memory_bytes else None,
            "resources/peak_pids": float(self.peak_pids) if self.peak_pids else None,
            "resources/oom_events": float(self.oom_events),
        }
