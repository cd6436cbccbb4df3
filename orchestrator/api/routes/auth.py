"""Signing in for API clients: a personal token for a username and password; who am I."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.api import auth
from orchestrator.api.deps import CurrentUser, DbSession

router = APIRouter(prefix="/api/auth", tags=["auth"])


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    label: str = Field(
        default="", max_length=128, description="What the token is for, to recognise it later."
    )


class TokenIssued(BaseModel):
    token: str = Field(description="The API token; shown once, never again.")
    username: str
    role: str


class Me(BaseModel):
    username: str
    role: str
    sponsor: str | None
    jurisdiction: str | None


@router.post("/token", response_model=TokenIssued)
def issue_token(body: TokenRequest, db: DbSession) -> TokenIssued:
    user = auth.authenticate(db, body.username, body.password, via="api")
    return TokenIssued(
        token=auth.issue_api_token(db, user, body.label), username=user.username, role=user.role
    )


@router.get("/me", response_model=Me)
def me(user: CurrentUser) -> Me:
    return Me(username=user.username, role=user.role, sponsor=user.sponsor, jurisdiction=user.jurisdiction)
