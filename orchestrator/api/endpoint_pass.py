"""What an endpoint token opens: its trial, whether that trial is open, and how to reach its model.

The database is asked at most once every ``RECHECK_S`` per token, so a developer's call costs no
database round trip, and a closed window or a revoked token still takes effect within that
time. The route to a trial's model server is asked of the trial's own gateway once
(``GET /_regsandbox/route``, with the platform's credential for that trial).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace

import httpx
from sqlalchemy import select

from orchestrator import security
from orchestrator.api.trials import is_open
from orchestrator.api.upstream import Origin, UpstreamError
from orchestrator.errors import AuthenticationError, ConflictError, NotFoundError
from orchestrator.settings import Settings
from orchestrator.store import EndpointToken, audit, sessions
from orchestrator.store.trials import find

logger = logging.getLogger("regsandbox.api.endpoint")
RECHECK_S = 1.0
ROUTE_PATH = "/_regsandbox/route"


@dataclass(frozen=True)
class Route:
    """Where a trial's calls go: its model server (recorded by relaying), or its gateway."""

    origin: Origin
    paths: frozenset[str] | None  # None: the trial's gateway checks the path itself
    records: bool  # True when the platform must hand the exchange to the trial
    timeout_s: float = 60.0  # how long the model may take to answer, as the trial's template says


@dataclass(frozen=True)
class Pass:
    """What a token opens, as checked against the database at ``checked``."""

    trial_id: str
    gateway_url: str
    credential: str
    route: Route
    checked: float


_passes: dict[str, Pass] = {}
_routes: dict[str, Route] = {}  # by gateway URL: a trial's route does not change while it is open
_seen: set[str] = set()
_lock = threading.Lock()


def bearer(header: str) -> str:
    if not header.lower().startswith("bearer "):
        raise AuthenticationError("an endpoint token is needed (Authorization: Bearer ...)")
    return header[7:].strip()


def cached(digest: str, trial_id: str) -> Pass | None:
    found = _passes.get(digest)
    if found is None or found.trial_id != trial_id or time.monotonic() - found.checked > RECHECK_S:
        return None
    return found


def check(settings: Settings, digest: str, trial_id: str, path: str) -> Pass:
    """The database's word on a token: its trial, open, reachable (blocking: run off the loop)."""
    try:
        found = _check(settings, digest, trial_id, path)
    except Exception:
        _passes.pop(digest, None)
        raise
    _passes[digest] = found
    return found


def _check(settings: Settings, digest: str, trial_id: str, path: str) -> Pass:
    with sessions(settings)() as db, db.begin():
        token = db.scalars(select(EndpointToken).where(EndpointToken.digest == digest)).first()
        if token is None or token.trial_id != trial_id:
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
            audit.record(db, f"user:{token.user_id}", "endpoint_first_call", f"trial:{trial_id}", path=path)
        gateway_url = trial.gateway_url
    credential = security.platform_credential(settings.keys_dir, trial_id)
    return Pass(trial_id, gateway_url, credential, route(gateway_url, credential), time.monotonic())


def route(gateway_url: str, credential: str) -> Route:
    """The trial's model server as its gateway names it; the gateway itself if it names none."""
    known = _routes.get(gateway_url)
    if known is not None:
        return known
    through_gateway = Route(Origin.parse(gateway_url), None, records=False)
    try:
        reply = httpx.get(
            gateway_url + ROUTE_PATH, headers={"authorization": f"Bearer {credential}"}, timeout=5.0
        )
        found = reply.json() if reply.status_code == 200 else None
        direct = (
            Route(
                Origin.parse(found["upstream"]),
                frozenset(found["paths"]),
                records=True,
                timeout_s=float(found.get("timeout_s", 60.0)),
            )
            if isinstance(found, dict)
            else through_gateway
        )
    except (httpx.HTTPError, ValueError, KeyError, TypeError, UpstreamError) as exc:
        logger.warning("trial gateway %s named no model server (%s): forwarding through it", gateway_url, exc)
        direct = through_gateway
    with _lock:
        _routes[gateway_url] = direct
    return direct


def fall_back(found: Pass) -> Route:
    """The model server cannot be reached from the platform: go through the trial's gateway."""
    through_gateway = Route(
        Origin.parse(found.gateway_url), None, records=False, timeout_s=found.route.timeout_s
    )
    with _lock:
        _routes[found.gateway_url] = through_gateway
        for digest, known in list(_passes.items()):
            if known.gateway_url == found.gateway_url:
                _passes[digest] = replace(known, route=through_gateway)
    return through_gateway


def forget() -> None:
    """Drop every cached pass and route (tests, and a platform that restarts its trials)."""
    _passes.clear()
    _routes.clear()
    _seen.clear()
