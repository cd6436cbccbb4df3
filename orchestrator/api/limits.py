"""A cap on the size of API request bodies, enforced before any parser reads them.

FastAPI parses a multipart upload completely (spooling files to disk) before a route runs, so a
route cannot refuse an oversized report in time. This ASGI middleware refuses a declared
``Content-Length`` over the limit at once, and for bodies sent without one it counts while it
buffers, answering 413 as soon as the count passes the limit. Only ``/api/`` paths are capped:
the gateway under ``/trials/`` forwards model traffic with limits of its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MiB = 1024 * 1024
DEFAULT_LIMIT = 1 * MiB
# A signed report of demo size is about 200 KB; 20 MiB leaves room for any real one, with its
# signature and the multipart framing around both.
VERIFY_LIMIT = 20 * MiB


class BodyLimit:
    def __init__(
        self,
        app: ASGIApp,
        default: int = DEFAULT_LIMIT,
        per_path: Mapping[str, int] | None = None,
        on_refused: Callable[[Scope, int], None] | None = None,
    ) -> None:
        self.app = app
        self.default = default
        self.per_path = dict(per_path or {})
        self.on_refused = on_refused  # audits the refusal (blocking: run off the event loop)

    async def _refuse(self, scope: Scope, send: Send, limit: int) -> None:
        await _too_large(send, limit)
        if self.on_refused is not None:
            await run_in_threadpool(self.on_refused, scope, limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith("/api/") or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(path.rstrip("/"), self.default)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(scope, send, limit)
            return
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body.extend(message.get("body", b""))
            more = message.get("more_body", False)
            if len(body) > limit:
                await self._refuse(scope, send, limit)
                return
        await self.app(scope, _replay(bytes(body), receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the disconnect, as a server would

    return replayed


async def _too_large(send: Send, limit: int) -> None:
    payload = json.dumps({"error": f"request body larger than {limit // MiB} MiB"}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
