"""The platform's web application: the JSON API, the regulators' portal and the developers' gateway.

One exception handler maps the error root to HTTP statuses, so no deliberate refusal ever reaches
a client as a 500, and an unexpected one is logged and answered without internals.
"""

from __future__ import annotations

import logging
from functools import partial

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from orchestrator.api import decisions, refusals
from orchestrator.api.gateway import DeveloperEndpoint
from orchestrator.api.limits import VERIFY_LIMIT, BodyLimit
from orchestrator.api.runs import PrefectRuns, Runs
from orchestrator.errors import (
    AccessDeniedError,
    AuthenticationError,
    ConflictError,
    RateLimitedError,
    RegSandboxError,
    SpecError,
    TooLargeError,
    UnavailableError,
)
from orchestrator.settings import Settings, get_settings
from orchestrator.store import engine

logger = logging.getLogger("regsandbox.api")


def status_for(exc: RegSandboxError) -> int:
    if isinstance(exc, AuthenticationError):
        return 401
    if isinstance(exc, AccessDeniedError):
        return 403
    if isinstance(exc, LookupError):
        return 404
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, RateLimitedError):
        return 429
    if isinstance(exc, TooLargeError):
        return 413
    if isinstance(exc, UnavailableError):
        return 503
    if isinstance(exc, ValueError):
        return 422
    return 400


def create_app(settings: Settings | None = None, runs: Runs | None = None) -> FastAPI:
    """The platform app; ``runs`` replaces the Prefect server the trials run on (tests give a fake)."""
    settings = settings or get_settings()
    settings.ensure_dirs()
    engine(settings)  # creates the tables on first use, before the first request

    app = FastAPI(
        title="regsandbox platform",
        description="Trials, endpoints, exit reports, decisions and the audit log of a regulatory sandbox.",
        version="1",
    )
    app.state.settings = settings
    app.state.runs = runs or PrefectRuns(settings)
    app.add_middleware(
        BodyLimit,
        per_path={"/api/reports/verify": VERIFY_LIMIT, "/api/reports/import": VERIFY_LIMIT},
        on_refused=partial(refusals.oversized, settings),
    )
    # Outermost: developers' calls under /trials/ are forwarded before any routing (see its module).
    app.add_middleware(DeveloperEndpoint, settings=settings)

    @app.exception_handler(RegSandboxError)
    async def refused(request: Request, exc: RegSandboxError) -> JSONResponse:
        body: dict[str, object] = {"error": str(exc)}
        if isinstance(exc, SpecError):
            what = {decisions.SOURCE: "decision", "proposal": "proposal"}.get(exc.source, "trial spec")
            body = {"error": f"invalid {what}", "problems": exc.problems}
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthenticationError) else None
        return JSONResponse(body, status_code=status_for(exc), headers=headers)

    # A path that climbs out of its folder is refused by routing (404) or validation (422) before
    # any route runs; either way the attempt is audited.
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if refusals.probing(request.scope.get("raw_path", b"").decode("latin-1") or request.url.path):
            await run_in_threadpool(refusals.path_probe, settings, request)
        return await request_validation_exception_handler(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_refused(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and refusals.probing(request.scope.get("raw_path", b"").decode("latin-1")):
            await run_in_threadpool(refusals.path_probe, settings, request)
        return await http_exception_handler(request, exc)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": "internal error; it has been logged"}, status_code=500)

    @app.get("/api/health", tags=["platform"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    from orchestrator.api.routes import include_routes

    include_routes(app)
    return app
