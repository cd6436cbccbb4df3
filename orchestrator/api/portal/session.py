"""Signing in to the portal and out of it.

Every sign-in starts a new session (the previous one, if the browser had one, is ended), so a
session id planted in a browser before sign-in is never the one that becomes privileged. The
session cookie is HttpOnly and SameSite=Strict, and Secure whenever the request came over HTTPS.
The sign-in form itself carries a token matched against a short-lived cookie, so another site
cannot sign a browser in to an account of its choosing.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from orchestrator import security
from orchestrator.api import auth
from orchestrator.api.deps import SESSION_COOKIE
from orchestrator.api.portal.web import (
    PortalDb,
    SignInRequired,
    ViewerDep,
    csrf_ok,
    current_viewer,
    redirect,
    refused,
    render,
    safe_next,
    security_headers,
    url,
)
from orchestrator.errors import AuthenticationError
from orchestrator.store import audit

router = APIRouter()
SIGNIN_COOKIE = "regsandbox_signin"
SIGNIN_MINUTES = 30


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _form(
    request: Request,
    next_path: str,
    status_code: int = 200,
    username: str = "",
    error: str | None = None,
    notice: str | None = None,
) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html.j2",
        None,
        status_code=status_code,
        title="Sign in",
        next_path=next_path,
        signin_token=token,
        username=username,
        error=error,
        notice=notice,
    )
    response.set_cookie(
        SIGNIN_COOKIE,
        token,
        max_age=SIGNIN_MINUTES * 60,
        path=url(request, "/login"),
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, db: PortalDb, next: str = "", signed_out: bool = False) -> Response:
    # Shown even to a signed-in browser: signing in as someone else must not need a sign-out first.
    notice = "You have signed out." if signed_out else None
    try:
        viewer = current_viewer(request, db)
    except SignInRequired:
        pass
    else:
        notice = f"You are signed in as {viewer.username}. Signing in again ends that session."
    return _form(request, safe_next(request, next), notice=notice)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    db: PortalDb,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    signin_token: Annotated[str, Form(max_length=64)] = "",
    next: Annotated[str, Form(max_length=512)] = "",
) -> Response:
    next_path = safe_next(request, next)
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    if not expected or not security.same(signin_token, expected):
        return _form(
            request,
            next_path,
            status_code=400,
            username=username,
            error="The sign-in form had expired. Enter your username and password again.",
        )
    if not username or not password:
        return _form(
            request, next_path, status_code=400, username=username, error="Enter your username and password."
        )
    try:
        user = auth.authenticate(db, username, password, via="portal")
    except AuthenticationError:
        return _form(
            request, next_path, status_code=400, username=username, error="Wrong username or password."
        )
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:
        auth.end_session(db, previous)
    secret = auth.start_session(db, user)
    response = security_headers(redirect(next_path))
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=auth.SESSION_HOURS * 3600,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    response.delete_cookie(SIGNIN_COOKIE, path=url(request, "/login"))
    return response


@router.post("/logout", response_class=HTMLResponse)
def logout(
    request: Request,
    db: PortalDb,
    viewer: ViewerDep,
    csrf: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    if not csrf_ok(db, viewer, csrf, "sign_out"):
        return refused(
            request, viewer, "This sign-out did not come from a portal page. Use the Sign out button."
        )
    auth.end_session(db, request.cookies.get(SESSION_COOKIE, ""))
    audit.record(db, viewer.username, "sign_out", via="portal")
    response = security_headers(redirect(url(request, "/login?signed_out=1")))
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(request)
    )
    return response
