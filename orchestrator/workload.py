"""Traffic plumbing shared by every evaluation kind.

The platform sends evaluation cases to the model through the gateway, exactly as a developer
would, so every answer is first a traffic record. :class:`TrafficSink` receives the records from
the gateway's thread and persists them; :func:`send_all` sends a kind's requests with bounded
concurrency and hands the records to the kind as they arrive, so monitors update (and stream to
MLflow) while the workload is still running.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from orchestrator.coverage import ErrorTally
from orchestrator.records import TrafficRecord


class TrafficSink:
    """Receives records from the gateway thread; the workload thread drains and persists them."""

    def __init__(self, capture_file: Path) -> None:
        self._queue: queue.Queue[TrafficRecord] = queue.Queue()
        self._file = capture_file
        self.counts = {"developer": 0, "evaluation": 0, "errors": 0}
        self.tally = ErrorTally()  # what the evaluation's errors were, for the report's coverage

    def __call__(self, record: TrafficRecord) -> None:
        self._queue.put(record)

    def drain(self, wait_s: float = 0.0) -> list[TrafficRecord]:
        records = []
        try:
            records.append(self._queue.get(timeout=wait_s) if wait_s else self._queue.get_nowait())
            while True:
                records.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        if records:
            with self._file.open("a", encoding="utf-8") as handle:
                for record in records:
                    handle.write(record.model_dump_json() + "\n")
                    self.counts[record.origin] += 1
                    self.counts["errors"] += record.status >= 400
            self.tally.add(records)
        return records


@dataclass(frozen=True)
class Request:
    """One evaluation request: a path under the gateway, its JSON body, and the cases it carries."""

    path: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Channel:
    """How an evaluation reaches the model: the gateway, its evaluation token and the sink."""

    url: str
    token: str
    sink: TrafficSink
    concurrency: int
    progress: Callable[[int, int], None]
    timeout_s: float = 30.0
    # Called about ten times a second whatever the progress; raises to stop the workload (a
    # sandbox that stopped: requests to it hang until their timeout rather than fail fast).
    check: Callable[[], None] | None = None


def send_all(channel: Channel, requests: list[Request], absorb: Callable[[list[TrafficRecord]], None]) -> int:
    """Send every request through the gateway; feed the records to ``absorb``; return the count.

    ``channel.progress(done, total)`` is called whenever the count of finished requests
    changes (and once at the end); it may raise to stop the workload (timeout, cancellation).
    """
    headers = {"Authorization": f"Bearer {channel.token}", "Content-Type": "application/json"}

    def send(request: Request) -> None:
        try:
            http.post(
                channel.url + request.path, content=request.body, headers={**headers, **request.headers}
            )
        except httpx.HTTPError:
            pass  # the gateway records the failure as traffic; nothing is lost here

    total = len(requests)
    with httpx.Client(timeout=channel.timeout_s) as http:
        pool = ThreadPoolExecutor(channel.concurrency)
        futures = [pool.submit(send, request) for request in requests]
        reported = -1
        try:
            while True:
                absorb(channel.sink.drain(wait_s=0.1))
                done = sum(f.done() for f in futures)
                if done != reported:
                    channel.progress(done, total)
                    reported = done
                if done == total:
                    break
                if channel.check is not None:
                    channel.check()
        except BaseException:
            # Requests not yet sent are dropped; those in flight end on their own (closing the
            # client ends them sooner), without holding the trial until their timeout.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        for future in futures:
            future.result()
    # The gateway queues each record before it answers, so nothing can still be on its way.
    absorb(channel.sink.drain())
    return total
