"""Developer traffic handed back to the trial that observes it, in batches.

The platform forwards a developer's call straight to the trial's model server (one hop), so the
trial's own gateway never sees it. What the trial must still record and monitor, the platform
hands to that gateway (``POST /_regsandbox/traffic``, with the platform's credential for the
trial), a batch at a time from a thread of its own: a forward costs an append to a list, not a
second HTTP exchange. A batch the trial cannot take yet is retried, and kept (bounded) until then.
"""

from __future__ import annotations

import atexit
import base64
import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

import httpx

logger = logging.getLogger("regsandbox.api.relay")
TRAFFIC_PATH = "/_regsandbox/traffic"
INTERVAL_S = 0.1
BATCH = 512
KEEP = 100_000  # exchanges held for trials that cannot take them yet, beyond which the oldest go


@dataclass(frozen=True)
class Exchange:
    """One forwarded call, as the trial's gateway turns it into a traffic record."""

    gateway_url: str
    credential: str
    timestamp: str
    latency_ms: float
    status: int
    path: str
    request: bytes
    response: bytes
    error: str | None
    first_byte_ms: float | None = None

    def wire(self) -> dict[str, object]:
        return {
            "timestamp": self.timestamp,
            "latency_ms": self.latency_ms,
            "status": self.status,
            "path": self.path,
            "request": base64.b64encode(self.request).decode(),
            "response": base64.b64encode(self.response).decode(),
            "error": self.error,
            "first_byte_ms": self.first_byte_ms,
        }


class Relay:
    """Collects exchanges from any thread or event loop; a daemon thread delivers them."""

    def __init__(self, interval_s: float = INTERVAL_S) -> None:
        self._pending: deque[Exchange] = deque(maxlen=KEEP)
        self._wake = threading.Event()
        self._interval = interval_s
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.delivered = 0
        self.dropped = 0

    def add(self, exchange: Exchange) -> None:
        if self._thread is None:
            self._start()
        self._pending.append(exchange)
        if len(self._pending) >= BATCH:
            self._wake.set()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="traffic-relay", daemon=True)
                self._thread.start()
                atexit.register(self.flush)

    def _run(self) -> None:
        with httpx.Client(timeout=10.0) as http:
            while True:
                self._wake.wait(self._interval)
                self._wake.clear()
                self._deliver(http)

    def flush(self, timeout_s: float = 5.0) -> None:
        """Deliver what is pending now (at exit, and in tests that read the trial's records)."""
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=timeout_s) as http:
            while self._pending and time.monotonic() < deadline:
                if not self._deliver(http):
                    time.sleep(0.05)

    def _deliver(self, http: httpx.Client) -> bool:
        """One pass over what is pending, by trial; False when some of it could not be delivered."""
        taken: list[Exchange] = []
        while self._pending and len(taken) < 50 * BATCH:
            taken.append(self._pending.popleft())
        by_gateway: dict[tuple[str, str], list[Exchange]] = {}
        for exchange in taken:
            by_gateway.setdefault((exchange.gateway_url, exchange.credential), []).append(exchange)
        ok = True
        for (url, credential), exchanges in by_gateway.items():
            for start in range(0, len(exchanges), BATCH):
                batch = exchanges[start : start + BATCH]
                if not self._post(http, url, credential, batch):
                    ok = False
                    self._pending.extendleft(reversed(batch))
        return ok

    def _post(self, http: httpx.Client, url: str, credential: str, batch: list[Exchange]) -> bool:
        body = json.dumps([exchange.wire() for exchange in batch])
        try:
            reply = http.post(
                url + TRAFFIC_PATH,
                content=body,
                headers={"authorization": f"Bearer {credential}", "content-type": "application/json"},
            )
        except httpx.HTTPError as exc:
            logger.warning("trial gateway %s did not take %d exchange(s): %s", url, len(batch), exc)
            return self._give_up_if_gone(batch, exc)
        if reply.status_code == 200:
            self.delivered += len(batch)
            return True
        logger.warning("trial gateway %s refused %d exchange(s): %s", url, len(batch), reply.status_code)
        self.dropped += len(batch)  # a refusal will not change on retry
        return True

    def _give_up_if_gone(self, batch: list[Exchange], exc: httpx.HTTPError) -> bool:
        # A trial that has torn its gateway down takes nothing more: its exchanges cannot be
        # recorded by it any longer, and retrying would only hold up other trials' batches.
        if isinstance(exc, httpx.ConnectError):
            self.dropped += len(batch)
            return True
        return False


relay = Relay()
