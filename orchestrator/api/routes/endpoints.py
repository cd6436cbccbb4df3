"""A trial's developer endpoint: where it is, and a token to call it (shown once)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field

from orchestrator.api import trials
from orchestrator.api.access import deny
from orchestrator.api.deps import CurrentUser, DbSession
from orchestrator.api.endpoints import endpoint_path, issue_endpoint_token
from orchestrator.api.routes.trials import Ref

router = APIRouter(prefix="/api/trials", tags=["endpoints"])


class EndpointPublic(BaseModel):
    trial_id: str | None
    url: str | None = Field(description="The endpoint under the platform's address; never holds a token.")
    open: bool = Field(description="Whether it takes developer traffic now.")
    open_until: dt.datetime | None = Field(description="When it closes; unset while the workload runs.")


class EndpointTokenIssued(BaseModel):
    token: str = Field(description="Bearer token for the endpoint; shown once, never again.")
    trial_id: str
    url: str


def _url(request: Request, path: str | None) -> str | None:
    return str(request.base_url).rstrip("/") + path if path else None


@router.get("/{ref}/endpoint", response_model=EndpointPublic)
def endpoint(ref: Ref, user: CurrentUser, db: DbSession, request: Request) -> EndpointPublic:
    trial = trials.visible_trial(db, user, ref, "endpoint_read")
    if user.role not in ("admin", "developer"):
        deny(
            db, user, "endpoint_read", f"trial:{trial.trial_id or trial.id}", "the endpoint is the sponsor's"
        )
    return EndpointPublic(
        trial_id=trial.trial_id,
        url=_url(request, endpoint_path(trial)),
        open=trials.is_open(trial),
        open_until=trial.open_until,
    )


@router.post(
    "/{ref}/endpoint-tokens", response_model=EndpointTokenIssued, status_code=status.HTTP_201_CREATED
)
def issue_token(ref: Ref, user: CurrentUser, db: DbSession, request: Request) -> EndpointTokenIssued:
    trial = trials.visible_trial(db, user, ref, "endpoint_token")
    token = issue_endpoint_token(db, user, trial)
    url = _url(request, endpoint_path(trial))
    assert trial.trial_id is not None and url is not None  # noqa: S101 - an open trial has an id
    return EndpointTokenIssued(token=token, trial_id=trial.trial_id, url=url)
