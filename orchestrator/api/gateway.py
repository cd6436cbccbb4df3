"""The developers' endpoint: ``/trials/{trial_id}/...`` under the platform's address.

A developer's endpoint token (issued through the API, stored as a digest) opens one trial's
endpoint, only while that trial is open (deployed, and through its observation window). Calls are
forwarded to the trial's own gateway, which records every exchange as traffic and measures it; the
platform presents a credential derived for that trial (:func:`orchestrator.security.platform_credential`).
Each token has a rate limit (a token bucket), and a token's first call is an audit event. The
database is asked about a token at most once a second, so a call costs no database round trip.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from orchestrator import security
from orchestrator.api.deps import SettingsDep
from orchestrator.api.trials import is_open
from orchestrator.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    RateLimitedError,
    RegSandboxError,
)
from orchestrator.settings import Settings
from orchestrator.store import EndpointToken, audit, sessions
from orchestrator.store.trials import find

router = APIRouter(tags=["endpoint"])
RECHECK_S = 1.0


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


@dataclass(frozen=True)
class _Pass:
    """What a token opens, as checked against the database at ``checked``."""

    trial_id: str
    gateway_url: str
    credential: str
    checked: float


_passes: dict[str, _Pass] = {}


def _check(settings: Settings, digest: str, trial_id: str, path: str) -> _Pass:
    """The database's word on a token: its trial, open, reachable (blocking: run off the loop)."""
    with sessions(settings)() as db, db.begin():
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
        if digest not in _seen:
            _seen.add(digest)
            audit.record(
                db, f"user:{found.user_id}", "endpoint_first_call", f"trial:{trial_id}", path="/" + path
            )
        credential = security.platform_credential(settings.keys_dir, trial_id)
        return _Pass(trial_id, trial.gateway_url, credential, time.monotonic())


@router.api_route("/trials/{trial_id}/{path:path}", methods=["GET", "POST"], include_in_schema=False)
async def forward(trial_id: str, path: str, request: Request, settings: SettingsDep) -> Response:
    digest = security.digest(_bearer(request))
    # A token's pass is re-checked at most every RECHECK_S: a call pays no database round trip,
    # and a closed window or a revoked token takes effect within that time.
    found = _passes.get(digest)
    if found is None or found.trial_id != trial_id or time.monotonic() - found.checked > RECHECK_S:
        try:
            found = await run_in_threadpool(_check, settings, digest, trial_id, path)
        except RegSandboxError:
            _passes.pop(digest, None)
            raise
        _passes[digest] = found
    if not limiter.allow(digest, settings.endpoint_rate_per_s, settings.endpoint_burst):
        raise RateLimitedError(f"rate limit of {settings.endpoint_rate_per_s:g} requests/s reached")
    headers = {
        "authorization": f"Bearer {found.credential}",
        "content-type": request.headers.get("content-type", "application/json"),
    }
    try:
        reply = await _client(request).request(
            request.method, f"{found.gateway_url}/{path}", content=await request.body(), headers=headers
        )
    except httpx.HTTPError as exc:
        return Response(
            f'{{"error": "trial endpoint unreachable: {type(exc).__name__}"}}',
            502,
            media_type="application/json",
        )
    return Response(reply.content, reply.status_code, media_type=reply.headers.get("content-type"))
