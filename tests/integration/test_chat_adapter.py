"""The mlflow-chat template's adapter, run as the sandbox runs it (its server.py over a saved
ChatModel), answering the OpenAI chat API: models, completions with id and usage, streaming as
server-sent events ending in [DONE], and errors that name the parameter."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from examples.build_health_assistant import save_assistant
from orchestrator.templates import load_template

QUESTION = [{"role": "user", "content": "ควรเก็บปากกาอินซูลินที่บ้านอย่างไร"}]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def adapter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model = save_assistant(tmp_path_factory.mktemp("assistant") / "model", {})
    template = load_template("mlflow-chat")
    port = _free_port()
    env = {**os.environ, "MODEL_DIR": str(model), "HOST": "127.0.0.1", "PORT": str(port)}
    process = subprocess.Popen(  # noqa: S603 - the template's own server, with this interpreter
        [sys.executable, str(template.folder / "server.py")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + template.health_path, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_models_and_a_completion_with_id_and_usage(adapter: str) -> None:
    models = httpx.get(adapter + "/v1/models").json()
    assert models["object"] == "list" and models["data"][0]["id"] == "candidate"
    answer = httpx.post(
        adapter + "/v1/chat/completions", json={"model": "candidate", "messages": QUESTION}
    ).json()
    assert answer["id"].startswith("chatcmpl-") and answer["object"] == "chat.completion"
    assert isinstance(answer["created"], int) and answer["model"] == "candidate"
    usage = answer["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert "2-8" in answer["choices"][0]["message"]["content"]
    assert answer["choices"][0]["finish_reason"] == "stop"


def test_streaming_sends_chunks_then_done_with_the_same_text(adapter: str) -> None:
    whole = httpx.post(adapter + "/v1/chat/completions", json={"messages": QUESTION}).json()
    body = {"messages": QUESTION, "stream": True, "stream_options": {"include_usage": True}}
    with httpx.stream("POST", adapter + "/v1/chat/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert len({c["id"] for c in chunks}) == 1 and all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(ch["delta"].get("content") or "" for c in chunks for ch in c["choices"])
    assert text == whole["choices"][0]["message"]["content"]
    assert len(chunks) > 3  # streamed in pieces, not one block
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    assert any(ch.get("finish_reason") == "stop" for c in chunks for ch in c["choices"])


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
        ({"messages": QUESTION, "stream": "yes"}, "stream"),
    ],
)
def test_bad_requests_name_the_parameter(adapter: str, body: dict, param: str) -> None:  # type: ignore[type-arg]
    response = httpx.post(adapter + "/v1/chat/completions", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_a_body_that_is_not_json_is_refused_cleanly(adapter: str) -> None:
    response = httpx.post(adapter + "/v1/chat/completions", content=b"{not json")
    assert response.status_code == 400 and response.json()["error"]["param"] == "body"
