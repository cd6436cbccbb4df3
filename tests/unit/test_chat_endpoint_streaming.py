"""The OpenAI chat API through the developer's endpoint, streamed and not, with the official client.

The model server here is a small real HTTP server on loopback that speaks the OpenAI chat API and
writes its streamed answer one event every EVENT_GAP_S, so the tests can see whether events pass
through as they are written. The trial's gateway and the platform (served on a real port, SQLite
store) are the real ones; a live trial with a real model is tests/integration/test_chat_openai_client.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from orchestrator import security
from orchestrator.api import endpoint_pass
from orchestrator.api import gateway as platform_gateway
from orchestrator.api.relay import relay
from orchestrator.gateway import Gateway, hash_token, new_token
from orchestrator.records import TrafficRecord
from orchestrator.settings import Settings
from orchestrator.spec import load_spec
from orchestrator.store.trials import publish
from tests.served_platform import endpoint_token, served_platform

ROOT = Path(__file__).resolve().parents[2]
TRIAL = "chat-stream-1234abcd"
WORDS = ["Drink ", "water, ", "rest, ", "and ", "see ", "a ", "doctor."]
EVENT_GAP_S = 0.15


class _ChatModel(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._json({"object": "list", "data": [{"id": "stand-in", "object": "model", "owned_by": "test"}]})

    def do_POST(self) -> None:  # noqa: N802
        asked = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not asked.get("stream"):
            self._json(
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "created": 1,
                    "model": "stand-in",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "".join(WORDS)},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {
                        "prompt_tokens": 3,
                        "completion_tokens": len(WORDS),
                        "total_tokens": 3 + len(WORDS),
                    },
                }
            )
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        deltas = [{"role": "assistant"}] + [{"content": word} for word in WORDS]
        for index, delta in enumerate(deltas):
            chunk = {
                "id": "chatcmpl-2",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "stand-in",
                "choices": [
                    {"index": 0, "delta": delta, "finish_reason": "stop" if index == len(WORDS) else None}
                ],
            }
            self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())
            time.sleep(EVENT_GAP_S)
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _json(self, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def model_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatModel)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture()
def chat_trial(tmp_path: Path, model_server: str) -> Iterator[dict[str, Any]]:
    """An open chat trial: its gateway in front of the model server, its row in the platform."""
    settings = Settings(home=tmp_path / "home")
    settings.ensure_dirs()
    records: list[TrafficRecord] = []
    credential = security.platform_credential(settings.keys_dir, TRIAL)
    evaluation, evaluation_hash = new_token()
    gateway = Gateway(
        TRIAL,
        model_server,
        ["/v1/chat/completions", "/v1/models"],
        {hash_token(credential): "platform", evaluation_hash: "evaluation"},
        records.append,
    )
    url = gateway.start()
    spec = load_spec(ROOT / "examples" / "trials" / "health-assistant.yaml")
    publish(settings, TRIAL, spec, state="observing", status="running", gateway_url=url)
    endpoint_pass.forget()
    platform_gateway.limiter._buckets.clear()
    try:
        yield {
            "settings": settings,
            "records": records,
            "gateway": url,
            "evaluation": evaluation,
            "spec": spec,
        }
    finally:
        gateway.stop()


def _streamed(records: list[TrafficRecord]) -> list[TrafficRecord]:
    return [r for r in records if isinstance(r.response, dict) and "stream" in r.response]


def _wait_for(records: list[TrafficRecord], count: int) -> None:
    relay.flush()
    deadline = time.monotonic() + 5
    while len(records) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def test_the_openai_client_works_unchanged_through_the_platform(chat_trial: dict[str, Any]) -> None:
    settings, records = chat_trial["settings"], chat_trial["records"]
    with served_platform(settings) as base:
        token, url = endpoint_token(base, settings, TRIAL, chat_trial["spec"].sponsor)
        assert url.endswith(f"/trials/{TRIAL}/")
        client = openai.OpenAI(base_url=url + "v1", api_key=token, max_retries=0)
        assert [m.id for m in client.models.list()] == ["stand-in"]
        messages: Any = [{"role": "user", "content": "I have a fever. What should I do?"}]
        whole = client.chat.completions.create(model="stand-in", messages=messages)
        assert whole.choices[0].message.content == "".join(WORDS) and whole.usage is not None
        arrivals: list[float] = []
        pieces: list[str] = []
        started = time.perf_counter()
        for chunk in client.chat.completions.create(model="stand-in", messages=messages, stream=True):
            arrivals.append(time.perf_counter() - started)
            pieces.append(chunk.choices[0].delta.content or "")
        refused = openai.OpenAI(base_url=url + "v1", api_key="rsep_not-a-token", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            refused.models.list()
    assert "".join(pieces) == "".join(WORDS)
    # Unbuffered: the first event reached the client long before the model wrote its last.
    writing = EVENT_GAP_S * len(WORDS)
    assert arrivals[0] < writing / 2 and arrivals[-1] >= writing * 0.9, arrivals
    _wait_for(records, 3)
    assert [(r.origin, r.path, r.status) for r in records] == [
        ("developer", "/v1/models", 200),
        ("developer", "/v1/chat/completions", 200),
        ("developer", "/v1/chat/completions", 200),
    ]
    assert records[1].response["choices"][0]["message"]["content"] == "".join(WORDS)
    (streamed,) = _streamed(records)
    assert streamed.request["stream"] is True
    assert streamed.response["choices"][0]["message"]["content"] == "".join(WORDS)
    assert streamed.response["choices"][0]["finish_reason"] == "stop"
    assert streamed.response["stream"]["done"] is True
    assert streamed.response["stream"]["events"] == len(WORDS) + 2
    first = streamed.response["stream"]["first_event_ms"]
    assert first is not None and first < streamed.latency_ms - writing * 1000 * 0.5


def test_the_trial_gateway_passes_a_stream_on_and_records_it_once(chat_trial: dict[str, Any]) -> None:
    records = chat_trial["records"]
    body = {"model": "stand-in", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    arrivals, raw = [], b""
    started = time.perf_counter()
    with httpx.stream(
        "POST",
        chat_trial["gateway"] + "/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {chat_trial['evaluation']}", "X-Regsandbox-Case-Ids": "case-1"},
        timeout=30,
    ) as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        for piece in answer.iter_raw():
            arrivals.append(time.perf_counter() - started)
            raw += piece
    assert raw.count(b"data: ") == len(WORDS) + 2 and raw.endswith(b"data: [DONE]\n\n")
    writing = EVENT_GAP_S * len(WORDS)
    assert arrivals[0] < writing / 2 and len(arrivals) > len(WORDS) / 2, arrivals
    (record,) = records
    assert (record.origin, record.case_ids, record.status) == ("evaluation", ["case-1"], 200)
    assert record.response["choices"][0]["message"]["content"] == "".join(WORDS)
    assert record.response["stream"]["done"] is True
    assert record.latency_ms >= writing * 1000 * 0.9  # to the model's last byte
