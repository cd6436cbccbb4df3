"""What every portal page shares: who is signed in, CSRF checks, templates and response headers.

The portal is for browsers only, so it knows its caller from the session cookie alone (API tokens
are for the JSON API). Pages are rendered on the server with autoescaping on, and carry a strict
Content-Security-Policy: no script runs, and nothing is loaded from anywhere but the portal.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.orm import Session

from orchestrator import security
from orchestrator.api import auth
from orchestrator.api.deps import SESSION_COOKIE, get_db
from orchestrator.errors import AuthenticationError
from orchestrator.reports.formatting import fmt_num, fmt_time
from orchestrator.reports.i18n import jurisdiction_name
from orchestrator.store import User, audit

TEMPLATES = Path(__file__).with_name("templates")
CSS_NAME = "portal.css"
PREFIX = "/portal"
VERDICT_TEXT = {"pass": "Pass", "conditional": "Conditional", "fail": "Fail", None: "Not assessed"}
DECISION_TEXT = {
    "approve": "Approve",
    "approve_with_conditions": "Approve with conditions",
    "reject": "Reject",
}
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
R = TypeVar("R", bound=Response)
# Committed before the response leaves: a browser follows a redirect at once, and the page it lands
# on must see what the form just wrote (the default "request" scope commits after sending).
PortalDb = Annotated[Session, Depends(get_db, scope="function")]


class SignInRequired(Exception):
    """No valid portal session: the browser is sent to the sign-in page, then back to ``next``."""

    def __init__(self, next_path: str) -> None:
        super().__init__("sign in first")
        self.next_path = next_path


@dataclass(frozen=True)
class Viewer:
    """The signed-in person, as plain values: they stay readable after the request's transaction ends."""

    user: User  # for the access rules, while the request's session is open
    username: str
    role: str
    sponsor: str | None
    jurisdiction: str | None
    csrf: str

    @property
    def acts_for(self) -> str:
        if self.role == "regulator" and self.jurisdiction:
            return f"regulator, {jurisdiction_name(self.jurisdiction, 'en')}"
        if self.role == "developer" and self.sponsor:
            return f"developer, {self.sponsor}"
        return "administrator" if self.role == "admin" else self.role


def url(request: Request, path: str = "/") -> str:
    """An absolute path inside the portal, honouring the prefix a reverse proxy mounts the app under."""
    return f"{request.scope.get('root_path', '')}{PREFIX}{path}"


def safe_next(request: Request, value: str | None) -> str:
    """Where to go after signing in: only a path inside the portal, never another site."""
    home = url(request, "/")
    if not value or not value.startswith(home) or value.startswith("//") or "\\" in value:
        return home
    return value


def current_viewer(request: Request, db: PortalDb) -> Viewer:
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        try:
            user, session = auth.session_for(db, secret)
        except AuthenticationError:
            pass
        else:
            return Viewer(user, user.username, user.role, user.sponsor, user.jurisdiction, session.csrf)
    # A form posted after the session expired cannot be replayed after sign-in: back to the start page.
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    raise SignInRequired(target if request.method == "GET" else url(request, "/"))


ViewerDep = Annotated[Viewer, Depends(current_viewer)]


def csrf_ok(db: Session, viewer: Viewer, token: str, action: str, target: str = "") -> bool:
    """Whether a posted form carries this session's CSRF token; a mismatch is audited."""
    if token and security.same(token, viewer.csrf):
        return True
    audit.record(db, viewer.username, "csrf_refused", target, form=action, via="portal")
    return False


def security_headers(response: R, csp: str = PAGE_CSP) -> R:
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    # Pages show who may see what: no shared cache may keep them, nor the browser's back-forward cache.
    response.headers["Cache-Control"] = "no-store"
    return response


@functools.cache
def css_bytes() -> bytes:
    return (TEMPLATES / CSS_NAME).read_bytes()


def css_version() -> str:
    return hashlib.sha256(css_bytes()).hexdigest()[:12]


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return "—"
    return fmt_time(value if value.tzinfo else value.replace(tzinfo=dt.UTC))


def _iso(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    return f"{count / 1024:.1f} kB" if count < 10 * 1024 else f"{count / 1024:,.0f} kB"


def _exact(value: Any) -> str:
    """A value as the signed JSON spells it, so the page can be compared with the file digit by digit."""
    if value is None:
        return "—"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_exact(v) for v in value) + "]"
    return repr(value) if isinstance(value, float) else str(value)


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html.j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        num=fmt_num,
        when=_when,
        iso=_iso,
        verdict_text=lambda v: VERDICT_TEXT.get(v, str(v)),
        decision_text=lambda d: DECISION_TEXT.get(d, str(d)),
        country=lambda code: jurisdiction_name(code, "en"),
        size=_size,
        exact=_exact,
    )
    return env


def render(
    request: Request,
    template: str,
    viewer: Viewer | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    page = environment().get_template(template)
    html = page.render(
        viewer=viewer,
        portal=url(request, ""),
        css_url=url(request, f"/static/{CSS_NAME}?v={css_version()}"),
        nav=context.pop("nav", ""),
        **context,
    )
    return security_headers(HTMLResponse(html, status_code=status_code))


def not_found(request: Request, viewer: Viewer) -> HTMLResponse:
    """One page for what does not exist and what the viewer may not see: the two must read the same."""
    return render(request, "not_found.html.j2", viewer, status_code=404, title="Not found")


def refused(request: Request, viewer: Viewer | None, message: str, status_code: int = 403) -> HTMLResponse:
    return render(
        request, "refused.html.j2", viewer, status_code=status_code, title="Not done", message=message
    )


def redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)
