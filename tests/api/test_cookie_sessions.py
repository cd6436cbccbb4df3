"""The portal's session cookie works on the API too, but a change through it needs the CSRF header."""

from __future__ import annotations

from sqlalchemy import select

from orchestrator import security
from orchestrator.api import auth
from orchestrator.api.deps import CSRF_HEADER, SESSION_COOKIE
from orchestrator.store import User, WebSession, session_scope
from tests.api.conftest import Platform, example_spec


def test_a_cookie_reads_but_changes_only_with_the_csrf_token(platform: Platform) -> None:
    with session_scope(platform.settings) as db:
        user = db.scalars(select(User).where(User.username == "dev_a")).one()
        secret = auth.start_session(db, user)
    with session_scope(platform.settings) as db:
        csrf = db.scalars(select(WebSession).where(WebSession.digest == security.digest(secret))).one().csrf
    cookies = {SESSION_COOKIE: secret}
    client = platform.client
    assert client.get("/api/auth/me", cookies=cookies).json()["username"] == "dev_a"
    body = {"spec": example_spec(name="via-the-portal")}
    assert client.post("/api/trials", json=body, cookies=cookies).status_code == 401
    refused = client.post("/api/trials", json=body, cookies=cookies, headers={CSRF_HEADER: "guess"})
    assert refused.status_code == 401
    accepted = client.post("/api/trials", json=body, cookies=cookies, headers={CSRF_HEADER: csrf})
    assert accepted.status_code == 201, accepted.text
