"""FastAPI dependencies: a database session per request, and the caller, from a token or a cookie."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from orchestrator import security
from orchestrator.api import auth
from orchestrator.api.runs import Runs
from orchestrator.errors import AuthenticationError
from orchestrator.settings import Settings
from orchestrator.store import User, sessions

SESSION_COOKIE = "regsandbox_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_db(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the route returns, rolled back if it raises.

    Function scope: the commit happens before the response is sent, so a client never reads a
    success whose transaction then failed, nor races its own write with its next request.
    """
    with sessions(request.app.state.settings)() as db, db.begin():
        yield db


def get_runs(request: Request) -> Runs:
    runs: Runs = request.app.state.runs
    return runs


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
DbSession = Annotated[Session, Depends(get_db, scope="function")]
RunsDep = Annotated[Runs, Depends(get_runs)]


def current_user(request: Request, db: DbSession) -> User:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return auth.user_for_token(db, header[7:].strip())
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        user, session = auth.session_for(db, cookie)
        # A browser sends the cookie with any site's request: a change through the JSON API also
        # needs the session's CSRF token in a header, which another site cannot read or set.
        # (The portal's own forms carry the token in the form and check it there.)
        if request.method not in SAFE_METHODS and request.url.path.startswith("/api/"):
            sent = request.headers.get(CSRF_HEADER, "")
            if not security.same(sent, session.csrf):
                raise AuthenticationError(f"a change signed in by cookie needs the {CSRF_HEADER} header")
        return user
    raise AuthenticationError("sign in first: a bearer token or a portal session is needed")


CurrentUser = Annotated[User, Depends(current_user)]
