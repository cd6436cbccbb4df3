"""The platform's API served on a real loopback port, and a developer's endpoint token from it.

A real socket matters for streaming: the in-process test client collects a whole answer before
handing it over, so it cannot show whether events pass through unbuffered.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn

from orchestrator.api.app import create_app
from orchestrator.api.auth import create_user
from orchestrator.settings import Settings
from orchestrator.store import session_scope

PASSWORD = "a developer's long password"


@contextmanager
def served_platform(settings: Settings) -> Iterator[str]:
    """The platform app (API, portal, developers' endpoint) on a free loopback port; its base URL."""
    from tests.api.fakes import FakeRuns

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(settings, runs=FakeRuns())
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the platform did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def endpoint_token(base_url: str, settings: Settings, trial_id: str, sponsor: str) -> tuple[str, str]:
    """Sign a new developer of ``sponsor`` in and have the API issue a token for the trial's
    endpoint, as a developer would; returns the token and the endpoint's URL."""
    username = f"dev-{trial_id[-8:]}"
    with session_scope(settings) as db:
        create_user(db, "test", username, PASSWORD, "developer", sponsor=sponsor)
    with httpx.Client(base_url=base_url, timeout=30) as http:
        signed_in = http.post(
            "/api/auth/token", json={"username": username, "password": PASSWORD, "label": "t"}
        )
        assert signed_in.status_code == 200, signed_in.text
        issued = http.post(
            f"/api/trials/{trial_id}/endpoint-tokens",
            headers={"Authorization": f"Bearer {signed_in.json()['token']}"},
        )
        assert issued.status_code == 201, issued.text
        return issued.json()["token"], issued.json()["url"]
