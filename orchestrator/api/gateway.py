"""The developers' endpoint: ``/trials/{trial_id}/...`` under the platform's address.

A developer's endpoint token (issued through the API, stored as a digest) opens one trial's
endpoint, only while that trial is open (deployed, and through its observation window). The call
goes in one hop to the trial's model server, on the path the trial's template serves; what was
exchanged is handed to the trial's own gateway in batches (:mod:`orchestrator.api.relay`), which
records it as developer traffic and feeds the trial's monitors. Where the platform cannot reach
the model server itself (another network), it forwards to the trial's gateway instead, which
then records the call as it passes.

This is an ASGI layer in front of the application, not a route: a forward is on every developer
call's path, and routing, dependency resolution and a general-purpose HTTP client would cost
more CPU than the small model servers behind it. Each token has a rate limit (a token bucket),
and its first call is an audit event. The database is asked about a token at most once a
second, so a call costs no database round trip.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass

from fastapi.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from orchestrator import security
from orchestrator.api import endpoint_pass
from orchestrator.api.relay import Exchange, relay
from orchestrator.api.upstream import Headers, Pool, UpstreamError
from orchestrator.errors import AuthenticationError, RateLimitedError, RegSandboxError, TooLargeError
from orchestrator.records import utcnow
from orchestrator.settings import Settings

logger = logging.getLogger("regsandbox.api.endpoint")
RECHECK_S = endpoint_pass.RECHECK_S
# Beyond the model's own answer time, for the trial's gateway when calls go through it.
MARGIN_S = 5.0
MAX_BODY = 32 * 1024 * 1024
_FORWARDED = (b"content-type", b"accept")


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """A token bucket per endpoint token: ``burst`` calls at once, then ``rate`` per second."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, rate: float, burst: int) -> bool:
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.setdefault(key, _Bucket(float(burst), now))
            bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.at) * rate)
            bucket.at = now
            if bucket.tokens < 1.0:
                return False
            bucket.tokens -= 1.0
            return True


limiter = RateLimiter()


def _pools() -> Pool:
    """The connection pool of the running event loop (a test client may run a loop per call)."""
    loop = asyncio.get_running_loop()
    pool: Pool | None = getattr(loop, "_regsandbox_pool", None)
    if pool is None:
        pool = Pool()
        loop._regsandbox_pool = pool  # type: ignore[attr-defined]
    return pool


async def _json(send: Send, status: int, text: str, headers: Headers | None = None) -> None:
    import json

    body = json.dumps({"error": text}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _body(receive: Receive) -> bytes:
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise TooLargeError(f"request body over {MAX_BODY // (1024 * 1024)} MiB")
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


class DeveloperEndpoint:
    """Serves ``/trials/{id}/{path}``; hands every other request to the application."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        parts = path.split("/", 3) if path.startswith("/trials/") else []
        if len(parts) != 4 or not parts[2]:
            await self.app(scope, receive, send)
            return
        try:
            await self._forward(scope, receive, send, parts[2], "/" + parts[3])
        except RegSandboxError as exc:
            from orchestrator.api.app import status_for

            extra = [(b"www-authenticate", b"Bearer")] if isinstance(exc, AuthenticationError) else None
            await _json(send, status_for(exc), str(exc), extra)
        except ConnectionAbortedError:
            return  # the caller went away before its request was complete

    async def _forward(self, scope: Scope, receive: Receive, send: Send, trial_id: str, path: str) -> None:
        if scope["method"] not in ("GET", "POST"):
            await _json(send, 405, "only GET and POST are forwarded")
            return
        headers = dict(scope["headers"])
        digest = security.digest(endpoint_pass.bearer(headers.get(b"authorization", b"").decode("latin-1")))
        found = endpoint_pass.cached(digest, trial_id)
        if found is None:
            found = await run_in_threadpool(endpoint_pass.check, self.settings, digest, trial_id, path)
        if not limiter.allow(digest, self.settings.endpoint_rate_per_s, self.settings.endpoint_burst):
            raise RateLimitedError(f"rate limit of {self.settings.endpoint_rate_per_s:g} requests/s reached")
        route = found.route
        if route.paths is not None and path.split("?", 1)[0] not in route.paths:
            await _json(send, 404, "path not served by this sandbox")
            return
        body = await _body(receive)
        await self._exchange(scope, send, found, route, path, headers, body)

    async def _exchange(
        self,
        scope: Scope,
        send: Send,
        found: endpoint_pass.Pass,
        route: endpoint_pass.Route,
        path: str,
        headers: dict[bytes, bytes],
        body: bytes,
    ) -> None:
        """One admitted call, on one route: answered to the caller, and handed back to the trial."""
        target = path + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else "")
        forwarded = [(name, value) for name, value in headers.items() if name in _FORWARDED]
        if not route.records:
            forwarded.append((b"authorization", f"Bearer {found.credential}".encode()))
        answer = bytearray()
        started_at, started = utcnow(), time.perf_counter()
        status, error, head_sent = 502, None, False
        first_byte_ms: float | None = None  # a streamed answer's first event, for the record

        async def on_head(code: int, answer_headers: Headers) -> None:
            nonlocal status, head_sent
            status, head_sent = code, True
            kept = [(n, v) for n, v in answer_headers if n in (b"content-type", b"content-length")]
            await send({"type": "http.response.start", "status": code, "headers": kept})

        async def on_body(chunk: bytes) -> None:
            nonlocal first_byte_ms
            if first_byte_ms is None:
                first_byte_ms = (time.perf_counter() - started) * 1000.0
            answer.extend(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

        try:
            async with asyncio.timeout(route.timeout_s + (0.0 if route.records else MARGIN_S)):
                method = scope["method"]
                await _pools().request(route.origin, method, target, forwarded, body, on_head, on_body)
        except TimeoutError:
            status, error = 504, "model did not answer in time"
        except UpstreamError as exc:
            if exc.connecting and route.records:
                # Not reachable from the platform's network: through the trial's gateway from now on.
                logger.warning(
                    "trial %s: model server unreachable from the platform (%s)", found.trial_id, exc
                )
                through_gateway = endpoint_pass.fall_back(found)
                await self._exchange(scope, send, found, through_gateway, path, headers, body)
                return
            error = str(exc)
        if head_sent:
            await send({"type": "http.response.body", "body": b""})
        else:
            await _json(send, status, error or "model unreachable")
        if route.records:
            relay.add(
                Exchange(
                    gateway_url=found.gateway_url,
                    credential=found.credential,
                    timestamp=started_at.isoformat(),
                    latency_ms=(time.perf_counter() - started) * 1000.0,
                    status=status,
                    path=path,
                    request=body,
                    response=bytes(answer),
                    error=error,
                    first_byte_ms=first_byte_ms,
                )
            )
