"""The regulators' portal: server-rendered HTML pages under ``/portal`` (no script on any page).

``mount(app)`` adds the pages, a redirect from ``/`` to the portal, and the one handler the portal
needs of its own: a page that requires a session sends the browser to sign in, instead of
answering with the API's JSON 401.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from orchestrator.api.portal import files, pages, session, standard, verify
from orchestrator.api.portal.web import PREFIX, SignInRequired, redirect, security_headers, url

router = APIRouter(prefix=PREFIX, include_in_schema=False)
for _module in (session, pages, files, verify, standard):
    router.include_router(_module.router)

root = APIRouter(include_in_schema=False)


@root.get("/")
def home(request: Request) -> RedirectResponse:
    return redirect(url(request, "/"))


async def _sign_in_first(request: Request, exc: Exception) -> Response:
    target = exc.next_path if isinstance(exc, SignInRequired) else url(request, "/")
    return security_headers(redirect(url(request, "/login?") + urlencode({"next": target})))


def mount(app: FastAPI) -> None:
    app.include_router(router)
    app.include_router(root)
    app.add_exception_handler(SignInRequired, _sign_in_first)
