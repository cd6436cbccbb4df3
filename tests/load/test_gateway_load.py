"""The developers' endpoint under many concurrent clients, and under abuse, on loopback.

Real components: the platform application served by uvicorn on a loopback port, its SQLite
store and token check, a trial's own gateway (orchestrator.gateway.Gateway) that records the
exchanges the platform relays to it, and an HTTP model server that echoes each request's id.
``CLIENTS`` clients send ``PER_CLIENT`` calls each to one trial while other callers send a
second trial huge, malformed and slow bodies and unknown tokens. Afterwards the first trial has
recorded every call exactly once (none lost, none duplicated), each caller got its own answer
back, no call at all was answered with a 500, and the latency percentiles are printed (and
quoted in docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from orchestrator import security
from orchestrator.api import endpoint_pass
from orchestrator.api import gateway as platform_gateway
from orchestrator.api.app import create_app
from orchestrator.api.auth import create_user
from orchestrator.api.relay import relay
from orchestrator.gateway import Gateway, hash_token
from orchestrator.records import TrafficRecord
from orchestrator.settings import Settings
from orchestrator.spec import load_spec
from orchestrator.store import EndpointToken, audit, session_scope
from orchestrator.store.trials import publish

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CLIENTS, PER_CLIENT = 32, 40  # 1,280 calls to the trial under load
TRIALS = ("trial-load-1111", "trial-abuse-2222")


class _Echo(BaseHTTPRequestHandler):
    """A model server that answers each row with the row's own id, so answers can be matched."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            rows = json.loads(raw)["dataframe_split"]["data"]
            self._reply(200, {"predictions": [row[0] for row in rows]})
        except (ValueError, KeyError, TypeError, IndexError):
            self._reply(400, {"error": "malformed request"})

    def do_GET(self) -> None:  # noqa: N802
        self._reply(200, {"status": "ok"})

    def _reply(self, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


class _EchoServer(ThreadingHTTPServer):
    # The standard library's listen backlog of 5 would refuse connections under 32 clients:
    # a limit of this stand-in model server, not of the platform under test.
    request_queue_size = 256
    daemon_threads = True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def platform(tmp_path: Path) -> Iterator[dict[str, Any]]:
    model = _EchoServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=model.serve_forever, daemon=True).start()
    upstream = f"http://127.0.0.1:{model.server_address[1]}"
    settings = Settings(home=tmp_path / "home", endpoint_rate_per_s=100_000.0, endpoint_burst=100_000)
    spec = load_spec(ROOT / "examples" / "trials" / "diabetes-risk.yaml")
    records: dict[str, list[TrafficRecord]] = {t: [] for t in TRIALS}
    gateways, tokens = [], {}
    with session_scope(settings) as db:
        user_id = create_user(db, "test", "dev", "pw-dev-123", "developer", sponsor="acme-health").id
    for trial_id in TRIALS:
        credential = security.platform_credential(settings.keys_dir, trial_id)
        gateway = Gateway(
            trial_id,
            upstream,
            ["/invocations"],
            {hash_token(credential): "developer"},
            records[trial_id].append,
        )
        gateways.append(gateway)
        url = gateway.start()
        publish(settings, trial_id, spec, state="observing", status="running", gateway_url=url)
        token, digest = security.new_token("ep")
        with session_scope(settings) as db:
            db.add(EndpointToken(trial_id=trial_id, digest=digest, user_id=user_id))
        tokens[trial_id] = token
    platform_gateway.limiter._buckets.clear()
    endpoint_pass.forget()
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the platform did not start"
        time.sleep(0.05)
    yield {"url": f"http://127.0.0.1:{port}", "tokens": tokens, "records": records, "settings": settings}
    server.should_exit = True
    thread.join(timeout=10)
    for gateway in gateways:
        gateway.stop()
    model.shutdown()


async def _load(url: str, token: str) -> tuple[list[float], Counter[int], list[str]]:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    mismatched: list[str] = []
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=CLIENTS)

    async def client(n: int, http: httpx.AsyncClient) -> None:
        for i in range(PER_CLIENT):
            call = n * PER_CLIENT + i
            body = {"dataframe_split": {"columns": ["id"], "data": [[call]]}}
            started = time.perf_counter()
            reply = await http.post(f"{url}/trials/{TRIALS[0]}/invocations", json=body, headers=headers)
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[reply.status_code] += 1
            if reply.status_code == 200 and reply.json() != {"predictions": [call]}:
                mismatched.append(f"call {call} got {reply.text[:80]}")

    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await asyncio.gather(*(client(n, http) for n in range(CLIENTS)))
    return latencies, statuses, mismatched


async def _abuse(url: str, token: str, stop: threading.Event) -> Counter[str]:
    """Huge, malformed and slow bodies and unknown tokens at the other trial, while the load runs."""
    seen: Counter[str] = Counter()
    target = f"{url}/trials/{TRIALS[1]}/invocations"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def slow() -> AsyncIterator[bytes]:
        for piece in (b'{"dataframe_split": ', b'{"columns": ["id"], ', b'"data": [[7]]}}'):
            await asyncio.sleep(1.0)
            yield piece

    async with httpx.AsyncClient(timeout=60) as http:
        while not stop.is_set():
            huge = await http.post(target, content=b"[" * (33 * 1024 * 1024), headers=headers)
            seen[f"huge {huge.status_code}"] += 1
            bad = await http.post(target, content=b"\xff\x00{not json", headers=headers)
            seen[f"malformed {bad.status_code}"] += 1
            slow_reply = await http.post(target, content=slow(), headers=headers)
            seen[f"slow {slow_reply.status_code}"] += 1
            stranger = await http.post(target, json={}, headers={"Authorization": "Bearer ep_nope"})
            seen[f"unknown token {stranger.status_code}"] += 1
    return seen


def test_many_clients_lose_nothing_while_another_trial_is_abused(platform: dict[str, Any]) -> None:
    url, tokens = platform["url"], platform["tokens"]
    stop = threading.Event()
    abuse: dict[str, Counter[str]] = {}
    abuser = threading.Thread(
        target=lambda: abuse.setdefault("seen", asyncio.run(_abuse(url, tokens[TRIALS[1]], stop)))
    )
    abuser.start()
    began = time.monotonic()
    latencies, statuses, mismatched = asyncio.run(_load(url, tokens[TRIALS[0]]))
    wall = time.monotonic() - began
    stop.set()
    abuser.join(timeout=120)
    relay.flush(timeout_s=30)

    total = CLIENTS * PER_CLIENT
    assert statuses == Counter({200: total}), statuses
    assert not mismatched, mismatched[:5]
    recorded = Counter(r.request["dataframe_split"]["data"][0][0] for r in platform["records"][TRIALS[0]])
    lost = set(range(total)) - set(recorded)
    duplicated = {k: n for k, n in recorded.items() if n > 1}
    assert not lost and not duplicated, f"lost {len(lost)}, duplicated {len(duplicated)}"
    assert sum(recorded.values()) == total

    with session_scope(platform["settings"]) as db:
        assert audit.verify(db).intact, "concurrent first calls forked the audit chain"

    seen = abuse["seen"]
    assert not [k for k in seen if k.endswith(" 500")], seen
    assert seen["huge 413"] >= 1 and seen["unknown token 401"] >= 1, seen
    assert all(k.split()[-1] in {"200", "400", "401", "413", "422"} for k in seen), seen

    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    print(
        f"gateway load: {total} calls from {CLIENTS} concurrent clients in {wall:.1f} s "
        f"({total / wall:.0f} calls/s); latency p50 {pct(50):.1f} ms, p95 {pct(95):.1f} ms, "
        f"p99 {pct(99):.1f} ms, max {ordered[-1]:.1f} ms, mean {statistics.mean(latencies):.1f} ms; "
        f"recorded {sum(recorded.values())}, lost 0, duplicated 0; abuse meanwhile: {dict(seen)}"
    )
