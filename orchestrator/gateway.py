"""The developer endpoint: a per-trial gateway on the host in front of the sandboxed model.

It is the only way into the sandbox. It checks the caller's token (stored as a hash; the
developer's token and the platform's evaluation token are told apart), forwards only the
template's paths, and turns every exchange into a :class:`TrafficRecord`, so developer
traffic and evaluation traffic are observed the same way. A streamed answer (server-sent events,
as chat models send) is passed on as it comes and recorded once it ends, its events joined
(:mod:`orchestrator.chat_stream`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import httpx
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

from orchestrator.chat_stream import StreamCopy, is_event_stream, join_events, wants_stream
from orchestrator.errors import GatewayError
from orchestrator.records import TrafficRecord, utcnow

CASE_HEADER = "X-Regsandbox-Case-Ids"
# Answers are written in pieces (headers, then body): on a connection without TCP_NODELAY, Nagle's
# algorithm holds the body back until the client's delayed ACK, about 40 ms on every call. The
# connections the gateway accepts take the option from its listening socket.
NO_DELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
Capture = Literal["full", "digest"]
# "platform" is the platform's credential for this trial: it calls like a developer, and may also
# ask for the route to the model server and hand back the developer calls it forwarded there.
Origin = Literal["developer", "evaluation", "platform"]
INTERNAL = "/_regsandbox"


def new_token() -> tuple[str, str]:
    """A fresh bearer token and the hash that is the only thing kept of it."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _answer(request: bytes, answer: bytes, first_ms: float | None, capture: Capture) -> Any:
    """A relayed answer as captured: a streamed one (events) joined, like those passed on here."""
    if capture == "full" and (wants_stream(request) or answer.lstrip().startswith(b"data:")):
        return join_events(answer, first_ms)
    return _captured(answer, capture)


def _captured(body: bytes, capture: Capture) -> Any:
    if capture == "digest":
        return {"sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)}
    try:
        return json.loads(body) if body else None
    except ValueError:
        return {"sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body), "note": "not JSON"}


class Gateway:
    """Runs a small ASGI server in a background thread for the lifetime of a trial."""

    def __init__(
        self,
        trial_id: str,
        upstream: str,
        paths: list[str],
        tokens: dict[str, Origin],
        sink: Callable[[TrafficRecord], None],
        capture: Capture = "full",
        host: str = "127.0.0.1",
        timeout_s: float = 30.0,
    ) -> None:
        self.trial_id = trial_id
        self.upstream = upstream.rstrip("/")
        self.paths = set(paths)
        self._tokens = dict(tokens)  # token hash -> origin
        self._sink = sink
        self._capture: Capture = capture
        self._host = host
        self._timeout = timeout_s
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def _origin(self, request: Request) -> Origin | None:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            return None
        digest = hash_token(header[7:].strip())
        for known, origin in self._tokens.items():
            if hmac.compare_digest(known, digest):
                return origin
        return None

    def _app(self) -> FastAPI:
        app = FastAPI(
            title=f"regsandbox gateway {self.trial_id}", docs_url=None, redoc_url=None, openapi_url=None
        )
        client: dict[str, httpx.AsyncClient] = {}

        @app.get(INTERNAL + "/route")
        async def route(request: Request) -> Response:
            if self._origin(request) != "platform":
                return Response('{"error": "for the platform only"}', 403, media_type="application/json")
            return Response(
                json.dumps(
                    {"upstream": self.upstream, "paths": sorted(self.paths), "timeout_s": self._timeout}
                ),
                media_type="application/json",
            )

        @app.post(INTERNAL + "/traffic")
        async def relayed(request: Request) -> Response:
            if self._origin(request) != "platform":
                return Response('{"error": "for the platform only"}', 403, media_type="application/json")
            try:
                records = [self._relayed(item) for item in json.loads(await request.body())]
            except (ValueError, TypeError, KeyError) as exc:
                problem = json.dumps({"error": f"not a batch of exchanges: {exc}"})
                return Response(problem, 422, media_type="application/json")
            for record in records:
                self._sink(record)
            return Response(json.dumps({"recorded": len(records)}), media_type="application/json")

        @app.api_route("/{path:path}", methods=["GET", "POST"])
        async def forward(path: str, request: Request) -> Response:
            found = self._origin(request)
            if found is None:
                return Response('{"error": "missing or invalid token"}', 401, media_type="application/json")
            origin: Literal["developer", "evaluation"] = (
                "evaluation" if found == "evaluation" else "developer"
            )
            target = "/" + path
            if target not in self.paths:
                return Response(
                    '{"error": "path not served by this sandbox"}', 404, media_type="application/json"
                )
            body = await request.body()
            if "http" not in client:
                client["http"] = httpx.AsyncClient(timeout=self._timeout)
            http = client["http"]
            received = utcnow()
            started = time.perf_counter()
            cases = request.headers.get(CASE_HEADER) if origin == "evaluation" else None

            def record(status: int, answer: Any, error: str | None) -> None:
                self._sink(
                    TrafficRecord(
                        trial_id=self.trial_id,
                        request_id=uuid.uuid4().hex,
                        timestamp=received,
                        latency_ms=(time.perf_counter() - started) * 1000.0,
                        status=status,
                        path=target,
                        origin=origin,
                        case_ids=cases.split(",") if cases else None,
                        request=_captured(body, self._capture),
                        response=answer,
                        error=error,
                    )
                )

            status, payload, error = 502, b"", None
            try:
                upstream = await http.send(
                    http.build_request(
                        request.method,
                        self.upstream + target,
                        content=body,
                        headers={"content-type": request.headers.get("content-type", "application/json")},
                    ),
                    stream=True,
                )
                if is_event_stream(upstream.headers.get("content-type")):
                    # Passed on event by event as the model writes them; recorded once it ends.
                    return StreamingResponse(
                        self._pass_on(upstream, StreamCopy(started), record),
                        upstream.status_code,
                        media_type=upstream.headers["content-type"],
                    )
                try:
                    status, payload = upstream.status_code, await upstream.aread()
                finally:
                    await upstream.aclose()
            except httpx.TimeoutException:
                status, error = 504, "model did not answer in time"
            except httpx.HTTPError as exc:
                error = f"model unreachable: {type(exc).__name__}"
            record(status, _captured(payload, self._capture), error)
            if error is not None:
                payload = json.dumps({"error": error}).encode()
            return Response(payload, status, media_type="application/json")

        return app

    async def _pass_on(
        self,
        upstream: httpx.Response,
        copy: StreamCopy,
        record: Callable[[int, Any, str | None], None],
    ) -> AsyncIterator[bytes]:
        """The answer's chunks as they come; the exchange is one record, with the events joined."""
        error = None
        try:
            async for chunk in upstream.aiter_bytes():
                yield copy.add(chunk)
        except httpx.HTTPError as exc:
            error = f"model broke off its answer: {type(exc).__name__}"
        finally:
            await upstream.aclose()
            answer = copy.joined() if self._capture == "full" else _captured(copy.raw, "digest")
            record(upstream.status_code, answer, error)

    def _relayed(self, item: dict[str, Any]) -> TrafficRecord:
        """A developer call the platform forwarded straight to the model server, as a record."""
        request = base64.b64decode(item["request"])
        return TrafficRecord(
            trial_id=self.trial_id,
            request_id=uuid.uuid4().hex,
            timestamp=item["timestamp"],
            latency_ms=float(item["latency_ms"]),
            status=int(item["status"]),
            path=str(item["path"]),
            origin="developer",
            request=_captured(request, self._capture),
            response=_answer(
                request, base64.b64decode(item["response"]), item.get("first_byte_ms"), self._capture
            ),
            error=item.get("error"),
        )

    def start(self) -> str:
        """Start serving; return the base URL (an ephemeral port on the configured host)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(*NO_DELAY)
        try:
            sock.bind((self._host, 0))
        except OSError as exc:
            raise GatewayError(f"trial {self.trial_id}: cannot bind gateway on {self._host}: {exc}") from exc
        port = sock.getsockname()[1]
        config = uvicorn.Config(self._app(), log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[sock])),  # type: ignore[union-attr]
            name=f"gateway-{self.trial_id}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise GatewayError(f"trial {self.trial_id}: gateway did not start")
            time.sleep(0.01)
        self.url = f"http://{self._host}:{port}"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None
