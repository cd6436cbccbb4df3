"""The endpoint's HTTP client against real servers on loopback: uvicorn, and Python's http.server.

Connections are reused, a streamed answer arrives chunk by chunk before it is complete, an answer
delimited by closing the connection is read whole, and a kept-alive connection the server has
closed meanwhile is replaced without the caller noticing.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from orchestrator.api.upstream import Origin, Pool, UpstreamError
from tests.unit.test_gateway import upstream  # noqa: F401 - the fixture: http.server, HTTP/1.0


def _app() -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    async def echo(body: dict) -> dict:  # type: ignore[type-arg]
        return {"echo": body}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def events() -> AsyncIterator[bytes]:
            for n in range(3):
                yield f"data: {n}\n\n".encode()
                await asyncio.sleep(0.2)
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # A short keep-alive: the stale-connection test waits it out.
    srv = uvicorn.Server(uvicorn.Config(_app(), log_level="warning", timeout_keep_alive=1))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(5)


async def _call(pool: Pool, url: str, method: str, path: str, body: bytes = b"") -> tuple[int, list[bytes]]:
    status, chunks = 0, []

    async def head(code: int, headers: list[tuple[bytes, bytes]]) -> None:
        nonlocal status
        status = code

    async def part(chunk: bytes) -> None:
        chunks.append(chunk)

    await pool.request(
        Origin.parse(url), method, path, [(b"content-type", b"application/json")], body, head, part
    )
    return status, chunks


def test_connections_are_reused(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    opened = 0
    original = asyncio.open_connection

    async def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal opened
        opened += 1
        return await original(*args, **kwargs)

    monkeypatch.setattr(asyncio, "open_connection", counting)

    async def main() -> list[tuple[int, list[bytes]]]:
        pool = Pool()
        results = []
        for _ in range(5):
            results += await asyncio.gather(
                *[_call(pool, server, "POST", "/echo", b'{"a": 1}') for _ in range(4)]
            )
        pool.close()
        return results

    results = asyncio.run(main())
    assert all(status == 200 and b"".join(chunks) == b'{"echo":{"a":1}}' for status, chunks in results)
    assert opened == 4  # 20 calls, four at a time, over four connections


def test_a_streamed_answer_arrives_chunk_by_chunk(server: str) -> None:
    async def main() -> tuple[int, list[bytes], list[float]]:
        pool, arrivals, chunks = Pool(), [], []
        started = time.monotonic()

        async def head(code: int, headers: list[tuple[bytes, bytes]]) -> None:
            assert (b"content-type", b"text/event-stream; charset=utf-8") in headers

        async def part(chunk: bytes) -> None:
            arrivals.append(time.monotonic() - started)
            chunks.append(chunk)

        await pool.request(Origin.parse(server), "GET", "/stream", [], b"", head, part)
        return 200, chunks, arrivals

    _, chunks, arrivals = asyncio.run(main())
    assert b"".join(chunks) == b"data: 0\n\ndata: 1\n\ndata: 2\n\ndata: [DONE]\n\n"
    assert len(chunks) >= 4 and arrivals[0] < 0.15 < arrivals[-1]  # the first before the last was sent


def test_an_answer_ended_by_closing_the_connection(upstream: str) -> None:  # noqa: F811
    status, chunks = asyncio.run(
        _call(Pool(), upstream, "POST", "/invocations", b'{"dataframe_split": {"data": [[1]]}}')
    )
    assert status == 200 and b"predictions" in b"".join(chunks)


def test_a_connection_closed_while_idle_is_replaced(server: str) -> None:
    async def main() -> tuple[int, int]:
        pool = Pool()
        first, _ = await _call(pool, server, "POST", "/echo", b"{}")
        await asyncio.sleep(1.5)  # the server closes the idle connection after 1 s
        second, _ = await _call(pool, server, "POST", "/echo", b"{}")
        return first, second

    assert asyncio.run(main()) == (200, 200)


def test_an_unreachable_server_is_told_apart_from_a_broken_answer() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: refused
        with pytest.raises(UpstreamError) as refused:
            asyncio.run(_call(Pool(), f"http://127.0.0.1:{port}", "GET", "/"))
    assert refused.value.connecting
    with pytest.raises(UpstreamError, match="only plain http"):
        Origin.parse("ftp://example.invalid/")
