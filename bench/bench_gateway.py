"""What the developers' endpoint adds: latency and throughput through the platform against the sandbox.

A real Docker sandbox serves a small MLflow model. The trial's own gateway (which records every
exchange) runs in a process of its own, as in a trial's flow run, and the platform (its own
uvicorn process, SQLite store, token check, rate limit) forwards ``/trials/{id}/invocations``
straight to the model server and hands each exchange back to that gateway in batches, as during
a trial's observation window. The CPU each process spends per call is printed too. The same
requests go, at the same concurrency, once straight to the sandbox's model server (the baseline)
and once through the platform; the two alternate in rounds so that drift in machine load hits
both alike.

    python bench/bench_gateway.py [--requests 400] [--concurrency 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' model helpers

from bench.summary import emit, figure  # noqa: E402
from orchestrator import security  # noqa: E402
from orchestrator.api.auth import create_user  # noqa: E402
from orchestrator.backends.docker import DockerBackend  # noqa: E402
from orchestrator.gateway import hash_token  # noqa: E402
from orchestrator.settings import Settings  # noqa: E402
from orchestrator.spec import Resources, load_spec  # noqa: E402
from orchestrator.store import EndpointToken, session_scope  # noqa: E402
from orchestrator.store.trials import publish  # noqa: E402
from orchestrator.templates import load_template  # noqa: E402
from tests.integration.models import tiny_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BODY = b'{"dataframe_split": {"columns": ["a", "b"], "data": [[0.1, 0.2], [0.9, 0.5]]}}'
TRIAL = "bench-gateway-1"


# The trial's gateway as a trial's flow run holds it: records go to a sink, here one that drops them.
GATEWAY = """
import sys, time
from orchestrator.gateway import Gateway
tokens = {sys.argv[2]: "platform"}
gateway = Gateway("bench-gateway-1", sys.argv[1], ["/invocations"], tokens, lambda r: None)
print(gateway.start(), flush=True)
time.sleep(3600)
"""


def wait_for(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load(url: str, token: str | None, requests: int, concurrency: int) -> tuple[list[float], float]:
    """Per-request latencies (ms) and the whole batch's throughput (requests/s)."""
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    latencies: list[float] = []
    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as http:

        def one(_: int) -> None:
            started = time.perf_counter()
            reply = http.post(url, content=BODY, headers=headers)
            latencies.append((time.perf_counter() - started) * 1000)
            if reply.status_code != 200:
                raise RuntimeError(f"{url}: {reply.status_code} {reply.text[:200]}")

        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, range(requests)))
        return latencies, requests / (time.perf_counter() - started)


def cpu_s(pid: int) -> float:
    """CPU seconds a process has used so far (user + system), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # No rate limit in the way: the benchmark measures forwarding, not the limiter's refusals.
        settings = Settings(home=Path(tmp) / "home", endpoint_rate_per_s=1e6, endpoint_burst=10**6)
        backend = DockerBackend(settings)
        backend.teardown(TRIAL)
        sandbox = backend.provision(TRIAL, Resources(cpus=1.0, memory_mb=1024))
        trial_gateway: subprocess.Popen[str] | None = None
        server: subprocess.Popen[bytes] | None = None
        try:
            endpoint = backend.deploy(
                sandbox, load_template("mlflow-pyfunc"), tiny_model(Path(tmp) / "model")
            )
            credential = security.platform_credential(settings.keys_dir, TRIAL)
            trial_gateway = subprocess.Popen(
                [sys.executable, "-c", GATEWAY, endpoint.url, hash_token(credential)],
                stdout=subprocess.PIPE,
                text=True,
            )
            gateway_url = (trial_gateway.stdout.readline() if trial_gateway.stdout else "").strip()
            spec = load_spec(ROOT / "examples" / "trials" / "diabetes-risk.yaml")
            publish(settings, TRIAL, spec, state="observing", status="running", gateway_url=gateway_url)
            with session_scope(settings) as db:
                user = create_user(
                    db, "bench", "developer", "bench-password", "developer", sponsor=spec.sponsor
                )
                token, digest = security.new_token("ep")
                db.add(EndpointToken(trial_id=TRIAL, digest=digest, user_id=user.id))
            port = free_port()
            env = {
                **os.environ,
                "REGSANDBOX_HOME": str(settings.home),
                "REGSANDBOX_ENDPOINT_RATE_PER_S": "1000000",
                "REGSANDBOX_ENDPOINT_BURST": "1000000",
            }
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "--factory",
                    "orchestrator.api.app:create_app",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ],
                env=env,
            )
            wait_for(f"http://127.0.0.1:{port}/api/health")
            direct_url = endpoint.url + "/invocations"
            platform_url = f"http://127.0.0.1:{port}/trials/{TRIAL}/invocations"
            load(direct_url, None, 50, args.concurrency)  # warm both paths
            load(platform_url, token, 50, args.concurrency)
            direct: list[float] = []
            platform: list[float] = []
            direct_rps: list[float] = []
            platform_rps: list[float] = []
            spent = {"platform": 0.0, "trial gateway": 0.0}
            for _ in range(args.rounds):
                lat, rps = load(direct_url, None, args.requests, args.concurrency)
                direct += lat
                direct_rps.append(rps)
                before = {"platform": cpu_s(server.pid), "trial gateway": cpu_s(trial_gateway.pid)}
                lat, rps = load(platform_url, token, args.requests, args.concurrency)
                time.sleep(0.2)  # the last batch handed back to the trial's gateway
                spent["platform"] += cpu_s(server.pid) - before["platform"]
                spent["trial gateway"] += cpu_s(trial_gateway.pid) - before["trial gateway"]
                platform += lat
                platform_rps.append(rps)
        finally:
            for process in (server, trial_gateway):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=10)
            backend.teardown(TRIAL)
    d_rps, p_rps = statistics.median(direct_rps), statistics.median(platform_rps)
    print(f"requests {args.requests} x {args.rounds} rounds, concurrency {args.concurrency}")
    for label, lat, rps in (("sandbox directly", direct, d_rps), ("through the platform", platform, p_rps)):
        print(f"{label:<20} p50 {pct(lat, 50):7.1f} ms  p99 {pct(lat, 99):7.1f} ms  {rps:7.1f} req/s")
    print(
        f"added latency        p50 {pct(platform, 50) - pct(direct, 50):7.1f} ms  "
        f"p99 {pct(platform, 99) - pct(direct, 99):7.1f} ms"
    )
    calls = args.requests * args.rounds
    for label, seconds in spent.items():
        print(f"CPU per call         {label:<14} {seconds / calls * 1000:5.2f} ms")
    print(f"throughput ratio platform / direct: {p_rps / d_rps:.2f}  (target >= 0.8)")
    base = f"straight to the model server, concurrency {args.concurrency}"
    emit(
        "gateway",
        [
            figure("throughput through the platform", p_rps, "req/s", base, d_rps, "higher", ">= 0.8"),
            figure("p50 latency through the platform", pct(platform, 50), "ms", base, pct(direct, 50)),
            figure("p99 latency through the platform", pct(platform, 99), "ms", base, pct(direct, 99)),
        ],
    )


if __name__ == "__main__":
    main()
