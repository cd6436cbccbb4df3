"""The developers' endpoint: ``/trials/{trial_id}/...`` under the platform's address.

A developer's endpoint token (issued through the API, stored as a digest) opens one trial's
endpoint, only while that trial is open (deployed, and through its observation window). Calls are
forwarded to the trial's own gateway, which records every exchange as traffic and measures it; the
platform presents a credential derived for that trial (:func:`orchestrator.security.platform_credential`).
Each token has a rate limit (a token bucket), and a token's first call is an audit event.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

import httpx
from fastapi import APIRouter, Request, Response
from sqlalchemy import select

from orchestrator import security
from orchestrator.api.deps import DbSession, SettingsDep
from orchestrator.api.trials import is_open
from orchestrator.errors import AuthenticationError, ConflictError, NotFoundError, RateLimitedError
from orchestrator.store import EndpointToken, audit
from orchestrator.store.trials import find

router = APIRouter(tags=["endpoint"])


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
_seen: set[str] = set()


def _client(request: Request) -> httpx.AsyncClient:
    """One pooled client per app: a new connection per call would double the added latency."""
    state, loop = request.app.state, asyncio.get_running_loop()
    # A client belongs to one event loop (a test client may run each call in a loop of its own).
    if getattr(state, "endpoint_loop", None) is not loop:
        state.endpoint_http = httpx.AsyncClient(timeout=60.0, limits=httpx.Limits(max_connections=64))
        state.endpoint_loop = loop
    client: httpx.AsyncClient = state.endpoint_http
    return client


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        raise AuthenticationError("an endpoint token is needed (Authorization: Bearer ...)")
    return header[7:].strip()


@router.api_route("/trials/{trial_id}/{path:path}", methods=["GET", "POST"], include_in_schema=False)
async def forward(
    trial_id: str, path: str, request: Request, db: DbSession, settings: SettingsDep
) -> Response:
    token = _bearer(request)
    digest = security.digest(token)
    found = db.scalars(select(EndpointToken).where(EndpointToken.digest == digest)).first()
    if found is None or found.trial_id != trial_id:
        audit.record_apart(db, "endpoint", "endpoint_refused", f"trial:{trial_id}", reason="token")
        raise AuthenticationError("this token does not open this trial's endpoint")
    trial = find(db, trial_id)
    if trial is None:
        raise NotFoundError(f"no trial {trial_id}")
    if not is_open(trial) or not trial.gateway_url:
        audit.record_apart(db, "endpoint", "endpoint_refused", f"trial:{trial_id}", reason="closed")
        raise ConflictError(f"trial {trial_id}'s endpoint is not open (state {trial.state})")
    if not limiter.allow(digest, settings.endpoint_rate_per_s, settings.endpoint_burst):
        raise RateLimitedError(f"rate limit of {settings.endpoint_rate_per_s:g} requests/s reached")
    if digest not in _seen:
        _seen.add(digest)
        audit.record(db, f"user:{found.user_id}", "endpoint_first_call", f"trial:{trial_id}", path="/" + path)
    credential = security.platform_credential(settings.keys_dir, trial_id)
    headers = {
        "authorization": f"Bearer {credential}",
        "content-type": request.headers.get("content-type", "application/json"),
    }
    try:
        reply = await _client(request).request(
            request.method, f"{trial.gateway_url}/{path}", content=await request.body(), headers=headers
        )
    except httpx.HTTPError as exc:
        return Response(
            f'{{"error": "trial endpoint unreachable: {type(exc).__name__}"}}',
            502,
            media_type="application/json",
        )
    return Response(reply.content, reply.status_code, media_type=reply.headers.get("content-type"))
