"""Streamed chat answers through the developers' endpoint: does the first event wait for the last?

A stand-in model server on loopback speaks the OpenAI chat API and writes a streamed answer of
EVENTS events, one every GAP_S (a model writing tokens). The same streamed request is sent
straight to it (the baseline), through the trial's gateway (the evaluation's path: it records the
exchange with its events joined) and through the platform's ``/trials/{id}/v1/...`` (a developer's
path, with an endpoint token the API issued); the three alternate, so machine load hits all alike.
Printed: time to the first event and to the last, median over the requests, and the first-event
ratio against the baseline; the BENCH figures are the first and the last event through each path
against the same times straight to the model server. Unbuffered streaming keeps the first event
near the baseline's, far below the whole answer's time.

    python bench/bench_chat_stream.py [--requests 20] [--events 20] [--gap 0.05]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' platform helpers

from bench.summary import emit, figure  # noqa: E402
from orchestrator import security  # noqa: E402
from orchestrator.api.relay import relay  # noqa: E402
from orchestrator.gateway import Gateway, hash_token, new_token  # noqa: E402
from orchestrator.records import TrafficRecord  # noqa: E402
from orchestrator.settings import Settings  # noqa: E402
from orchestrator.spec import load_spec  # noqa: E402
from orchestrator.store.trials import publish  # noqa: E402
from tests.served_platform import endpoint_token, served_platform  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TRIAL = "bench-chat-stream-1"
BODY = {
    "model": "stand-in",
    "messages": [{"role": "user", "content": "Is dengue contagious?"}],
    "stream": True,
}


def stand_in(events: int, gap: float) -> type[BaseHTTPRequestHandler]:
    class Model(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for index in range(events):
                chunk = {"id": "c", "object": "chat.completion.chunk", "model": "stand-in"}
                chunk["choices"] = [{"index": 0, "delta": {"content": f"w{index} "}, "finish_reason": None}]
                self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())
                time.sleep(gap)
            self._chunk(b"data: [DONE]\n\n")
            self._chunk(b"")

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def log_message(self, *args: object) -> None:
            pass

    return Model


def timed(http: httpx.Client, url: str, token: str) -> tuple[float, float]:
    started = time.perf_counter()
    first = None
    with http.stream("POST", url, json=BODY, headers={"Authorization": f"Bearer {token}"}) as answer:
        assert answer.status_code == 200, answer.read()
        for piece in answer.iter_raw():
            if first is None and piece:
                first = time.perf_counter() - started
    assert first is not None
    return first, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--gap", type=float, default=0.05)
    args = parser.parse_args()
    model = ThreadingHTTPServer(("127.0.0.1", 0), stand_in(args.events, args.gap))
    threading.Thread(target=model.serve_forever, daemon=True).start()
    direct = f"http://127.0.0.1:{model.server_address[1]}"
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / "home")
        settings.ensure_dirs()
        records: list[TrafficRecord] = []
        evaluation, evaluation_hash = new_token()
        credential = security.platform_credential(settings.keys_dir, TRIAL)
        gateway = Gateway(
            TRIAL,
            direct,
            ["/v1/chat/completions"],
            {hash_token(credential): "platform", evaluation_hash: "evaluation"},
            records.append,
        )
        gateway_url = gateway.start()
        spec = load_spec(ROOT / "examples" / "trials" / "smollm2.yaml")
        publish(settings, TRIAL, spec, state="observing", status="running", gateway_url=gateway_url)
        with served_platform(settings) as base, httpx.Client(timeout=60) as http:
            token, url = endpoint_token(base, settings, TRIAL, spec.sponsor)
            paths = {
                "model server (baseline)": (direct + "/v1/chat/completions", "none"),
                "trial gateway": (gateway_url + "/v1/chat/completions", evaluation),
                "platform /trials/{id}/v1": (url + "v1/chat/completions", token),
            }
            times: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
            for _ in range(args.requests):
                for name, (target, key) in paths.items():
                    times[name].append(timed(http, target, key))
        relay.flush()
        gateway.stop()
    model.shutdown()
    writing = args.events * args.gap
    print(f"{args.requests} streamed answers per path, {args.events} events {args.gap * 1000:.0f} ms apart")
    baseline = statistics.median(first for first, _ in times["model server (baseline)"])
    baseline_last = statistics.median(last for _, last in times["model server (baseline)"])
    figures = []
    for name, measured in times.items():
        first = statistics.median(f for f, _ in measured)
        last = statistics.median(t for _, t in measured)
        if name != "model server (baseline)":
            base = "straight to the model server"
            figures.append(
                figure(f"first event through the {name}", first * 1000, "ms", base, baseline * 1000)
            )
            figures.append(
                figure(f"last event through the {name}", last * 1000, "ms", base, baseline_last * 1000)
            )
        print(
            f"  {name:<26} first event {first * 1000:7.1f} ms  last {last * 1000:7.1f} ms  "
            f"first-event ratio {first / baseline:5.2f}x"
        )
    joined = [r for r in records if isinstance(r.response, dict) and r.response.get("stream")]
    print(
        f"  recorded: {len(records)} exchanges, {len(joined)} with their events joined "
        f"(the whole answer takes {writing * 1000:.0f} ms to write)"
    )
    emit("chat_stream", figures)


if __name__ == "__main__":
    main()
