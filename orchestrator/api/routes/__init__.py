"""The API's routers, one module per resource; ``include_routes`` mounts them all."""

from __future__ import annotations

from fastapi import FastAPI


def include_routes(app: FastAPI) -> None:
    from orchestrator.api.portal import mount as mount_portal
    from orchestrator.api.routes import audit, auth, decisions, endpoints, reports, standard, trials, users

    for module in (auth, users, trials, endpoints, reports, decisions, audit, standard):
        app.include_router(module.router)
    mount_portal(app)
