"""FastAPI dependencies: a database session per request, and the caller, from a token or a cookie."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from orchestrator.api import auth
from orchestrator.errors import AuthenticationError
from orchestrator.settings import Settings
from orchestrator.store import User, sessions

SESSION_COOKIE = "regsandbox_session"


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_db(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the route returns, rolled back if it raises."""
    with sessions(request.app.state.settings)() as db, db.begin():
        yield db


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
DbSession = Annotated[Session, Depends(get_db)]


def current_user(request: Request, db: DbSession) -> User:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return auth.user_for_token(db, header[7:].strip())
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        user, _ = auth.session_for(db, cookie)
        return user
    raise AuthenticationError("sign in first: a bearer token or a portal session is needed")


CurrentUser = Annotated[User, Depends(current_user)]
