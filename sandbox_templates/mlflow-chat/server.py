"""OpenAI chat API in front of an MLflow ChatModel mounted read-only at $MODEL_DIR.

``POST /v1/chat/completions`` with and without ``stream: true`` (server-sent events: ``data: {...}``
chunks, then ``data: [DONE]``), ``GET /v1/models`` and ``GET /health``. The answer carries ``id``,
``created``, ``model`` and ``usage``, which MLflow's scoring server leaves out. Bad requests get an
OpenAI-shaped error naming the parameter, never a traceback.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import re
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import mlflow.pyfunc
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from mlflow.exceptions import MlflowException

MODEL_ID = os.environ.get("MODEL_ID", "candidate")
ROLES = {"system", "user", "assistant", "tool"}
# Parameters an MLflow ChatModel accepts (ChatParams); others (seed, logprobs ...) are dropped.
PARAMS = ("temperature", "max_tokens", "stop", "n", "top_p", "top_k", "frequency_penalty", "presence_penalty")
WORD = re.compile(r"\w+|[^\w\s]")

started = time.monotonic()
model = mlflow.pyfunc.load_model(os.environ.get("MODEL_DIR", "/model"))
loaded_s = time.monotonic() - started
loaded_at = int(time.time())
app = FastAPI(title="regsandbox mlflow-chat adapter", docs_url=None, redoc_url=None)


class BadRequest(ValueError):
    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def error(
    status: int, message: str, param: str | None = None, kind: str = "invalid_request_error"
) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": None}}, status)


def count_tokens(text: str) -> int:
    """An estimate for models that report no usage: words and punctuation marks."""
    return len(WORD.findall(text or ""))


def parse(body: Any) -> tuple[dict[str, Any], bool]:
    if not isinstance(body, dict):
        raise BadRequest("body", "the body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages", "messages must be a non-empty list")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise BadRequest(f"messages[{index}].role", f"role must be one of {sorted(ROLES)}")
        content = message.get("content")
        if isinstance(content, list):  # content parts: keep the text ones
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            raise BadRequest(f"messages[{index}].content", "content must be a string")
        messages[index] = {"role": message["role"], "content": content}
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest("stream", "stream must be true or false")
    payload = {"messages": messages, **{k: body[k] for k in PARAMS if body.get(k) is not None}}
    return payload, stream


def completion(payload: dict[str, Any]) -> dict[str, Any]:
    answer = model.predict(payload)
    if not isinstance(answer, dict) or not answer.get("choices"):
        raise RuntimeError("the model returned no choices")
    answer["id"] = answer.get("id") or f"chatcmpl-{uuid.uuid4().hex}"
    answer["object"] = "chat.completion"
    answer["created"] = int(answer.get("created") or time.time())
    answer["model"] = MODEL_ID
    usage = answer.get("usage") or {}
    if not usage.get("total_tokens"):
        prompt = sum(count_tokens(m["content"]) for m in payload["messages"])
        completion_tokens = sum(
            count_tokens((c.get("message") or {}).get("content", "")) for c in answer["choices"]
        )
        usage = {"prompt_tokens": prompt, "completion_tokens": completion_tokens}
        usage["total_tokens"] = prompt + completion_tokens
    answer["usage"] = usage
    return answer


def produced(payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The model's stream, run to its end in one thread of its own.

    MLflow's predict_stream keeps a context variable across the generator's life, and the server
    may resume a generator on a different worker thread for every chunk, which breaks it; a thread
    of its own hands each chunk over as soon as it is produced.
    """
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=64)

    def run() -> None:
        try:
            for chunk in model.predict_stream(payload):
                handoff.put(("chunk", chunk))
            handoff.put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - re-raised on the serving side
            handoff.put(("error", exc))

    threading.Thread(target=run, daemon=True).start()
    while True:
        kind, value = handoff.get()
        if kind == "end":
            return
        if kind == "error":
            raise value
        yield value


def chunks(payload: dict[str, Any], include_usage: bool) -> Iterator[str]:
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    text = []

    def frame(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> str:
        body = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": MODEL_ID,
            "choices": choices,
        }
        if usage is not None:
            body["usage"] = usage
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    try:
        try:
            pieces = produced(payload)
            # The first chunk shows whether the model streams at all; the rest is sent as it comes.
            first = next(pieces, None)
            stream: Iterable[dict[str, Any]] = itertools.chain([first] if first is not None else [], pieces)
        except (NotImplementedError, AttributeError, TypeError, MlflowException):
            # A ChatModel without predict_stream: one chunk with the whole answer.
            answer = completion(payload)
            message = answer["choices"][0].get("message") or {}
            stream = [
                {"choices": [{"index": 0, "delta": message, "finish_reason": None}]},
                {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            ]
        for chunk in stream:
            choices = chunk.get("choices") or []
            for choice in choices:
                text.append((choice.get("delta") or {}).get("content") or "")
            yield frame(choices)
        if include_usage:
            prompt = sum(count_tokens(m["content"]) for m in payload["messages"])
            done = count_tokens("".join(text))
            yield frame(
                [], {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done}
            )
    except Exception as exc:  # noqa: BLE001 - the stream already started: report in-band
        yield f"data: {json.dumps({'error': {'message': str(exc)[:2000], 'type': 'model_error'}})}\n\n"
    yield "data: [DONE]\n\n"


@app.get("/health")
def health() -> dict[str, Any]:
    return {"status": "ok", "model_load_s": round(loaded_s, 3)}


@app.get("/v1/models")
def models() -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": MODEL_ID, "object": "model", "created": loaded_at, "owned_by": "regsandbox"}],
    }


@app.post("/v1/chat/completions", response_model=None)
async def chat(request: Request) -> JSONResponse | StreamingResponse:
    try:
        body = await request.json()
    except ValueError:
        return error(400, "the body is not JSON", "body")
    try:
        payload, stream = parse(body)
    except BadRequest as exc:
        return error(400, str(exc), exc.param)
    if stream:
        options = body.get("stream_options") or {}
        include_usage = bool(options.get("include_usage")) if isinstance(options, dict) else False
        return StreamingResponse(chunks(payload, include_usage), media_type="text/event-stream")
    try:
        from starlette.concurrency import run_in_threadpool

        return JSONResponse(await run_in_threadpool(completion, payload))
    except Exception as exc:  # noqa: BLE001 - the model's own failure is reported, not hidden
        return error(500, f"the model failed: {str(exc)[:2000]}", None, "model_error")


if __name__ == "__main__":
    # 0.0.0.0 inside a container (its network is the isolation); a backend without one sets HOST.
    host = os.environ.get("HOST", "0.0.0.0")  # noqa: S104
    uvicorn.run(app, host=host, port=int(os.environ.get("PORT", "8080")), log_level="warning")
