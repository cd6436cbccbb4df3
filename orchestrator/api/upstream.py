"""Keep-alive HTTP/1.1 connections from the platform to the trials' model servers.

The developers' endpoint forwards every call, so what one forward costs in CPU is what the
endpoint costs in throughput. A general-purpose client (parsing, header models, pool bookkeeping)
spends more per call than the small model servers behind it; this one writes the request line and
body straight onto a pooled connection and parses the answer with httptools, the C parser uvicorn
already uses. The answer's body is handed on chunk by chunk as it arrives, so a streamed answer
(server-sent events) reaches the developer unbuffered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httptools

Headers = list[tuple[bytes, bytes]]
OnHead = Callable[[int, Headers], Awaitable[None]]
OnBody = Callable[[bytes], Awaitable[None]]


class UpstreamError(Exception):
    """The model server could not be reached (``connecting``), or broke off its answer."""

    def __init__(self, message: str, connecting: bool = False) -> None:
        super().__init__(message)
        self.connecting = connecting


@dataclass
class _Answer:
    """What httptools has parsed of one answer so far (its callbacks fill it)."""

    headers: Headers = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    head_done: bool = False
    complete: bool = False
    keep_alive: bool = False
    parser: httptools.HttpResponseParser | None = None

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.head_done = True
        # Asked here: once the message is complete the parser has reset for the next one.
        self.keep_alive = bool(self.parser and self.parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        self.chunks.append(bytes(body))

    def on_message_complete(self) -> None:
        self.complete = True


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    def close(self) -> None:
        self.writer.close()


@dataclass(frozen=True)
class Origin:
    """A model server's address, split once."""

    host: str
    port: int
    base: str  # path prefix, without a trailing slash

    @classmethod
    def parse(cls, url: str) -> Origin:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise UpstreamError(f"only plain http model servers are forwarded to, not {url!r}")
        return cls(parts.hostname, parts.port or 80, parts.path.rstrip("/"))


class Pool:
    """Idle keep-alive connections per origin; one pool belongs to one event loop."""

    def __init__(self, idle_per_origin: int = 64) -> None:
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._limit = idle_per_origin

    async def _acquire(self, origin: Origin) -> tuple[_Connection, bool]:
        idle = self._idle.get((origin.host, origin.port))
        while idle:
            conn = idle.pop()
            if not conn.writer.is_closing() and not conn.reader.at_eof():
                return conn, True
            conn.close()
        try:
            reader, writer = await asyncio.open_connection(origin.host, origin.port)
        except OSError as exc:
            raise UpstreamError(f"model unreachable: {type(exc).__name__}", connecting=True) from exc
        return _Connection(reader, writer), False

    def _release(self, origin: Origin, conn: _Connection) -> None:
        idle = self._idle.setdefault((origin.host, origin.port), [])
        if len(idle) < self._limit:
            idle.append(conn)
        else:
            conn.close()

    async def request(
        self,
        origin: Origin,
        method: str,
        path: str,
        headers: Headers,
        body: bytes,
        on_head: OnHead,
        on_body: OnBody,
    ) -> None:
        """Send one request and pass its answer on; a stale kept-alive connection is retried once."""
        lines = [f"{method} {origin.base}{path} HTTP/1.1\r\nhost: {origin.host}:{origin.port}\r\n".encode()]
        lines += [name + b": " + value + b"\r\n" for name, value in headers]
        lines.append(b"content-length: %d\r\n\r\n" % len(body))
        message = b"".join(lines) + body
        while True:
            conn, reused = await self._acquire(origin)
            answer = _Answer()
            try:
                conn.writer.write(message)
                keep = await self._read(conn, answer, on_head, on_body)
            except (OSError, asyncio.IncompleteReadError, httptools.HttpParserError) as exc:
                conn.close()
                if reused and not answer.head_done:
                    continue  # the server had closed this idle connection: try a new one
                raise UpstreamError(f"model broke off its answer: {type(exc).__name__}") from exc
            except BaseException:
                conn.close()  # cancelled or timed out mid-answer: the connection is in an unknown state
                raise
            if keep:
                self._release(origin, conn)
            else:
                conn.close()
            return

    @staticmethod
    async def _read(conn: _Connection, answer: _Answer, on_head: OnHead, on_body: OnBody) -> bool:
        parser = answer.parser = httptools.HttpResponseParser(answer)
        sent_head = False
        while not answer.complete:
            data = await conn.reader.read(65536)
            if not data:
                if answer.head_done and b"content-length" not in dict(answer.headers):
                    answer.complete = True  # an answer delimited by closing the connection
                    if not sent_head:
                        await on_head(parser.get_status_code(), answer.headers)
                    return False
                raise ConnectionResetError("connection closed before the answer was complete")
            parser.feed_data(data)
            if answer.head_done and not sent_head:
                await on_head(parser.get_status_code(), answer.headers)
                sent_head = True
            if answer.chunks:
                for chunk in answer.chunks:
                    await on_body(chunk)
                answer.chunks.clear()
        return answer.keep_alive

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
