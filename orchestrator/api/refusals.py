"""Audit events for requests refused before any route or user is known.

An oversized body is refused by the body limit before it is read, and a download path that
tries to climb out of the report folder (``..``, encoded slashes) fails request validation
before a route runs; neither has a signed-in user yet. Both are still recorded, with the
caller's address and what was asked for, so that probing shows in the audit log.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote

from starlette.requests import Request
from starlette.types import Scope

from orchestrator.settings import Settings
from orchestrator.store import audit, session_scope

logger = logging.getLogger("regsandbox.api.refusals")


def _caller(client: tuple[str, int] | None) -> str:
    return f"address:{client[0]}" if client else "address:unknown"


def probing(path: str) -> bool:
    """Whether a path tries to leave the folder it names (``..`` or a slash hidden in a part)."""
    decoded = unquote(unquote(path))
    return ".." in decoded.split("/") or "%2f" in path.lower() or "\\" in decoded


def _record(settings: Settings, actor: str, action: str, target: str, **detail: object) -> None:
    try:
        with session_scope(settings) as db:
            audit.record(db, actor, action, target, **detail)
    except Exception as exc:  # the refusal stands whether or not it could be recorded
        logger.warning("could not audit %s on %s: %s", action, target, exc)


def oversized(settings: Settings, scope: Scope, limit: int) -> None:
    declared = dict(scope.get("headers") or []).get(b"content-length", b"").decode("latin-1")
    _record(
        settings,
        _caller(scope.get("client")),
        "upload_refused",
        str(scope.get("path", ""))[:256],
        reason="too large",
        limit=limit,
        declared=declared or None,
    )


def path_probe(settings: Settings, request: Request) -> None:
    client = request.client
    _record(
        settings,
        _caller((client.host, client.port) if client else None),
        "path_refused",
        request.url.path[:256],
        reason="path outside the report folder",
    )
