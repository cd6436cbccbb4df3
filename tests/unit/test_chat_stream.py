"""Streamed chat answers joined into one record: the shape monitors read, and how it streamed."""

from __future__ import annotations

import json

from orchestrator.chat_stream import StreamCopy, is_event_stream, join_events, wants_stream


def _sse(*chunks: object, done: bool = True, newline: str = "\n") -> bytes:
    events = [f"data: {json.dumps(chunk)}" for chunk in chunks] + (["data: [DONE]"] if done else [])
    return "".join(event + newline + newline for event in events).encode()


def _chunk(content: str | None = None, role: str | None = None, finish: str | None = None) -> dict:
    delta = {k: v for k, v in {"role": role, "content": content}.items() if v is not None}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def test_stream_requests_and_event_streams_are_recognised() -> None:
    assert wants_stream(b'{"messages": [], "stream": true}')
    assert not wants_stream(b'{"messages": [], "stream": false}')
    assert not wants_stream(b'{"messages": [{"content": "\\"stream\\": true"}]}')
    assert not wants_stream(b'not json with "stream"')
    assert is_event_stream("text/event-stream; charset=utf-8")
    assert not is_event_stream("application/json")
    assert not is_event_stream(None)


def test_chunks_join_into_one_chat_completion_in_their_own_script() -> None:
    raw = _sse(
        _chunk(role="assistant"),
        _chunk("ไข้"),
        _chunk("เลือดออก"),
        _chunk(finish="stop"),
        {"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}},
        newline="\r\n",
    )
    joined = join_events(raw, first_ms=12.3456)
    assert joined["id"] == "chatcmpl-1" and joined["model"] == "m"
    assert joined["object"] == "chat.completion"
    assert joined["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": "ไข้เลือดออก"}, "finish_reason": "stop"}
    ]
    assert joined["usage"] == {"prompt_tokens": 5, "completion_tokens": 2}
    assert joined["stream"] == {"events": 6, "first_event_ms": 12.346, "done": True, "unparsed_events": 0}


def test_a_cut_stream_says_it_was_not_finished() -> None:
    joined = join_events(_sse(_chunk("Par", role="assistant"), _chunk("acet"), done=False) + b"data: {brok")
    assert joined["choices"][0]["message"]["content"] == "Paracet"
    assert joined["choices"][0]["finish_reason"] is None
    assert joined["stream"]["done"] is False and joined["stream"]["unparsed_events"] == 1


def test_a_stream_of_something_else_is_kept_as_a_digest() -> None:
    joined = join_events(b"event: ping\n\n: comment\n\n")
    assert joined["bytes"] == len(b"event: ping\n\n: comment\n\n") and len(joined["sha256"]) == 64


def test_the_copy_keeps_every_piece_and_times_the_first() -> None:
    copy = StreamCopy()
    raw = _sse(_chunk("a", role="assistant"), _chunk("b", finish="stop"))
    # Pieces split anywhere, even inside an event, as a network delivers them.
    for start in range(0, len(raw), 7):
        assert copy.add(raw[start : start + 7]) == raw[start : start + 7]
    assert copy.raw == raw and copy.first_ms is not None and copy.first_ms >= 0
    assert copy.joined()["choices"][0]["message"]["content"] == "ab"
