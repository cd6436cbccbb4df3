"""SmolLM2-135M-Instruct behind llama-cpp-python's OpenAI-compatible server, reproducibly.

llama-cpp-python's server samples at temperature 0.8 with a fresh seed unless a request says
otherwise, so the same question could get a different answer in a re-run of the trial; and it
writes until the context is full when no ``max_tokens`` is given, which a small model stuck
repeating itself does. This launcher serves the same app (``llama_cpp.server``, configured from
the environment: MODEL, MODEL_ALIAS, N_CTX, N_THREADS, SEED, HOST, PORT) and fills in
``temperature: 0``, the image's seed and a ``max_tokens`` of MAX_TOKENS on every completion
request that does not set them. A request that sets them is served as asked.
"""

from __future__ import annotations

import json
import os

import uvicorn
from llama_cpp.server.app import create_app
from llama_cpp.server.settings import Settings

DEFAULTS = {
    "temperature": 0.0,
    "seed": int(os.environ.get("SEED", "42")),
    "max_tokens": int(os.environ.get("MAX_TOKENS", "128")),
}
COMPLETIONS = ("/v1/chat/completions", "/v1/completions")


class ReproducibleDefaults:
    """ASGI middleware: completion requests without temperature, seed or max_tokens get the defaults."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in COMPLETIONS:
            await self.app(scope, receive, send)
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            body = json.dumps({**DEFAULTS, **payload}).encode()
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: only a disconnect can follow

        await self.app({**scope, "headers": headers}, replay, send)


def main() -> None:
    settings = Settings()
    app = ReproducibleDefaults(create_app(settings=settings))
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
