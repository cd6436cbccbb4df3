"""Signing in and out of the portal: cookie flags, fresh sessions, CSRF on the forms, redirects."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from urllib.parse import urlencode

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.api.deps import SESSION_COOKIE
from orchestrator.settings import Settings
from orchestrator.store import AuditEvent, User, WebSession, session_scope
from tests.portal.seed import PASSWORD, form_value, sign_in

Open = Callable[..., TestClient]


def _set_cookie(response, name: str) -> str:  # type: ignore[no-untyped-def]
    found = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert len(found) == 1, response.headers.get_list("set-cookie")
    return found[0]


@pytest.mark.parametrize(
    "path", ["/portal/", "/portal/verify", "/portal/trials/anything", "/portal/trials/x/download/json"]
)
def test_unauthenticated_pages_send_the_browser_to_sign_in(client: TestClient, path: str) -> None:
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/portal/login?next=")


def test_the_site_root_leads_to_the_portal(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/portal/")


def test_sign_in_sets_an_http_only_strict_session_cookie(client: TestClient) -> None:
    login = client.get("/portal/login")
    assert login.status_code == 200
    assert '<html lang="en">' in login.text
    assert 'for="username"' in login.text and 'for="password"' in login.text
    response = sign_in(client, "th-reg")
    assert (response.status_code, response.headers["location"]) == (303, "/portal/")
    cookie = _set_cookie(response, SESSION_COOKIE).lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # plain http: a Secure cookie would never come back
    assert "Trials that name Thailand" in client.get("/portal/").text


def test_the_session_cookie_is_secure_over_https(app: FastAPI) -> None:
    with TestClient(app, base_url="https://testserver") as browser:
        cookie = _set_cookie(sign_in(browser, "sg-reg"), SESSION_COOKIE).lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie


def test_a_wrong_password_is_refused_in_words_and_audited(client: TestClient, settings: Settings) -> None:
    response = sign_in(client, "th-reg", password="not it")
    assert response.status_code == 400
    assert "Wrong username or password." in response.text and 'role="alert"' in response.text
    assert SESSION_COOKIE not in response.cookies
    with session_scope(settings) as db:
        failed = db.scalars(select(AuditEvent).where(AuditEvent.action == "sign_in_failed")).all()
    assert any(e.actor == "th-reg" and e.detail == {"via": "portal"} for e in failed)


def test_a_sign_in_form_from_elsewhere_is_refused(client: TestClient) -> None:
    # No sign-in cookie: the form did not come from this portal (login CSRF).
    data = {"username": "th-reg", "password": PASSWORD, "signin_token": "forged", "next": ""}
    response = client.post("/portal/login", data=data, follow_redirects=False)
    assert response.status_code == 400 and "expired" in response.text
    assert SESSION_COOKIE not in response.cookies


def _only(browser: TestClient, secret: str) -> TestClient:
    browser.cookies.clear()
    browser.cookies.set(SESSION_COOKIE, secret)
    return browser


def test_every_sign_in_starts_a_new_session_and_ends_the_old(client: TestClient) -> None:
    planted = "rsses_planted-by-someone-else"
    first = sign_in(_only(client, planted), "th-reg").cookies[SESSION_COOKIE]
    assert first != planted
    second = sign_in(_only(client, first), "th-reg").cookies[SESSION_COOKIE]
    assert second != first
    assert _only(client, first).get("/portal/", follow_redirects=False).status_code == 303  # ended
    assert _only(client, second).get("/portal/", follow_redirects=False).status_code == 200


@pytest.mark.parametrize(
    ("wanted", "landing"),
    [
        ("/portal/verify", "/portal/verify"),
        ("https://elsewhere.example/", "/portal/"),
        ("//elsewhere.example/portal/", "/portal/"),
        ("/api/health", "/portal/"),
    ],
)
def test_after_sign_in_only_portal_pages_are_returned_to(
    client: TestClient, wanted: str, landing: str
) -> None:
    assert sign_in(client, "sg-reg", next_path=wanted).headers["location"] == landing


def test_sign_out_needs_the_session_csrf_token(signed_in: Open, settings: Settings) -> None:
    browser = signed_in("sg-reg", fresh=True)
    secret = browser.cookies[SESSION_COOKIE]
    refused = browser.post("/portal/logout", data={"csrf": "wrong"}, follow_redirects=False)
    assert refused.status_code == 403
    assert browser.get("/portal/", follow_redirects=False).status_code == 200  # still signed in
    token = form_value(browser.get("/portal/").text, "csrf")
    response = browser.post("/portal/logout", data={"csrf": token}, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/portal/login?signed_out=1")
    assert "Max-Age=0" in _set_cookie(response, SESSION_COOKIE)
    assert _only(browser, secret).get("/portal/", follow_redirects=False).status_code == 303  # row gone
    with session_scope(settings) as db:
        actions = [e.action for e in db.scalars(select(AuditEvent).where(AuditEvent.actor == "sg-reg"))]
        assert "csrf_refused" in actions and "sign_out" in actions
        assert db.scalars(select(WebSession)).first() is not None  # other people's sessions stay


def test_pages_forbid_script_framing_and_caching(signed_in: Open) -> None:
    response = signed_in("admin1").get("/portal/")
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    css = response.text.split('rel="stylesheet" href="')[1].split('"')[0]
    sheet = signed_in("admin1").get(css)
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/css")


def test_a_sign_in_is_committed_before_the_redirect_leaves(
    client: TestClient, app: FastAPI, settings: Settings
) -> None:
    # A browser follows the redirect at once: the session must exist by the time the 303 is sent.
    form = client.get("/portal/login")
    body = urlencode(
        {"username": "acme-dev", "password": PASSWORD, "signin_token": form_value(form.text, "signin_token")}
    )
    cookie = f"regsandbox_signin={client.cookies['regsandbox_signin']}"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/portal/login",
        "raw_path": b"/portal/login",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(body)).encode()),
            (b"cookie", cookie.encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    sessions_when_sent: list[int] = []

    def sessions_of_acme_dev() -> int:
        with session_scope(settings) as db:
            user = db.scalars(select(User).where(User.username == "acme-dev")).one()
            return len(db.scalars(select(WebSession).where(WebSession.user_id == user.id)).all())

    before = sessions_of_acme_dev()

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body.encode(), "more_body": False}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 303
            sessions_when_sent.append(sessions_of_acme_dev())

    asyncio.run(app(scope, receive, send))
    assert sessions_when_sent == [before + 1]
