"""Streamed chat answers (the OpenAI API's server-sent events) kept as one traffic record.

A streamed chat completion arrives as ``data: {chunk}`` events ending with ``data: [DONE]``.
The gateways pass each piece to the caller the moment it arrives (the developer sees the first
token when the model writes it) and keep a copy; once the stream ends, the copy is joined into
the shape of a non-streamed answer, so a monitor reads an exchange the same way whether it was
streamed or not. The record also says how the answer came: events, time to the first one, and
whether the stream was finished with ``[DONE]``.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

EVENT_STREAM = "text/event-stream"


def wants_stream(body: bytes) -> bool:
    """Whether a request asks for a streamed answer (``"stream": true`` in its JSON)."""
    if b'"stream"' not in body:  # most requests: no parse needed
        return False
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    return isinstance(payload, dict) and payload.get("stream") is True


def is_event_stream(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == EVENT_STREAM


class StreamCopy:
    """The bytes of one streamed answer as they pass, and when the first of them came."""

    def __init__(self, started: float | None = None) -> None:
        self._started = time.perf_counter() if started is None else started
        self._parts: list[bytes] = []
        self.first_ms: float | None = None

    def add(self, chunk: bytes) -> bytes:
        if chunk:
            if self.first_ms is None:
                self.first_ms = (time.perf_counter() - self._started) * 1000.0
            self._parts.append(chunk)
        return chunk

    @property
    def raw(self) -> bytes:
        return b"".join(self._parts)

    def joined(self) -> Any:
        return join_events(self.raw, self.first_ms)


def _events(raw: bytes) -> list[str]:
    """The data of each event (multi-line data joined by newlines, as the SSE format says)."""
    text = raw.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    events = []
    for block in text.split("\n\n"):
        lines = [line[5:].removeprefix(" ") for line in block.split("\n") if line.startswith("data:")]
        if lines:
            events.append("\n".join(lines))
    return events


def join_events(raw: bytes, first_ms: float | None = None) -> Any:
    """A streamed chat completion as one ``chat.completion`` object, with how it streamed."""
    head: dict[str, Any] = {}
    choices: dict[int, dict[str, Any]] = {}
    usage: Any = None
    done, unparsed, count = False, 0, 0
    for data in _events(raw):
        count += 1
        if data.strip() == "[DONE]":
            done = True
            continue
        try:
            chunk = json.loads(data)
        except ValueError:
            unparsed += 1
            continue
        if not isinstance(chunk, dict):
            unparsed += 1
            continue
        for key in ("id", "created", "model", "system_fingerprint"):
            if key not in head and chunk.get(key) is not None:
                head[key] = chunk[key]
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            _merge(choices, choice)
    if not head and not choices:
        # Not a chat stream at all: keep what identifies the bytes, as for any non-JSON body.
        return {
            "sha256": hashlib.sha256(raw).hexdigest(),
            "bytes": len(raw),
            "note": "event stream without chat chunks",
        }
    return {
        **head,
        "object": "chat.completion",
        "choices": [choices[index] for index in sorted(choices)],
        "usage": usage,
        "stream": {
            "events": count,
            "first_event_ms": None if first_ms is None else round(first_ms, 3),
            "done": done,
            "unparsed_events": unparsed,
        },
    }


def _merge(choices: dict[int, dict[str, Any]], choice: Any) -> None:
    if not isinstance(choice, dict):
        return
    index = choice.get("index", 0) if isinstance(choice.get("index", 0), int) else 0
    into = choices.setdefault(
        index, {"index": index, "message": {"role": "assistant", "content": ""}, "finish_reason": None}
    )
    delta = choice.get("delta") or {}
    if isinstance(delta, dict):
        if isinstance(delta.get("role"), str):
            into["message"]["role"] = delta["role"]
        if isinstance(delta.get("content"), str):
            into["message"]["content"] += delta["content"]
        if delta.get("tool_calls"):
            into["message"].setdefault("tool_calls_deltas", []).extend(delta["tool_calls"])
    if choice.get("finish_reason") is not None:
        into["finish_reason"] = choice["finish_reason"]
