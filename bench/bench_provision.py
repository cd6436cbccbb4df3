"""Time from provision start to a healthy endpoint, against a bare ``docker run`` of the same image.

Both sides start the same image with the same model mounted and poll ``/health`` from the
host with the same schedule; the sandbox side also creates and firewalls its network, reads
nothing from cache but the image, and applies every hardening option. Prints medians of
``--repeat`` runs and their ratio (target: 1.3 or below).

    python bench/bench_provision.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import docker
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' model helpers

from bench.summary import emit, figure  # noqa: E402
from orchestrator.backends.docker import DockerBackend  # noqa: E402
from orchestrator.settings import Settings  # noqa: E402
from orchestrator.spec import Resources  # noqa: E402
from orchestrator.templates import ensure_image, load_template  # noqa: E402
from tests.integration.models import tiny_model  # noqa: E402


def wait_healthy(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.02
    with httpx.Client(timeout=1.0) as http:
        while time.monotonic() < deadline:
            try:
                if http.get(url).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)
    raise TimeoutError(url)


def bare_run(client: docker.DockerClient, image: str, model: Path) -> float:
    started = time.perf_counter()
    container = client.containers.run(
        image,
        detach=True,
        volumes={str(model): {"bind": "/model", "mode": "ro"}},
        labels={"regsandbox.bench": "1"},
    )
    try:
        container.reload()
        address = container.attrs["NetworkSettings"]["IPAddress"]
        wait_healthy(f"http://{address}:8080/health")
        return time.perf_counter() - started
    finally:
        container.remove(force=True)


def sandbox_run(backend: DockerBackend, model: Path, n: int, attest: bool = False) -> float:
    trial_id = f"bench-provision-{n}"
    started = time.perf_counter()
    try:
        sandbox = backend.provision(trial_id, Resources(cpus=1.0, memory_mb=1024))
        if attest and not backend.attest(sandbox).passed:
            raise RuntimeError("isolation probes failed")
        backend.deploy(sandbox, load_template("mlflow-pyfunc"), model)
        return time.perf_counter() - started
    finally:
        backend.teardown(trial_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / "home")
        client = docker.from_env()
        image = ensure_image(load_template("mlflow-pyfunc"), settings, client).tag
        model = tiny_model(Path(tmp) / "model")
        backend = DockerBackend(settings, client)
        bare_run(client, image, model)  # warm the page cache for both sides alike
        bare, sandbox, attested = [], [], []
        for n in range(args.repeat):  # interleaved, so drift in machine load hits both sides
            bare.append(bare_run(client, image, model))
            sandbox.append(sandbox_run(backend, model, n))
            attested.append(sandbox_run(backend, model, n, attest=True))
    b, s, a = statistics.median(bare), statistics.median(sandbox), statistics.median(attested)
    print(f"bare docker run -> healthy              median {b:6.2f} s  runs {[round(x, 2) for x in bare]}")
    print(f"sandbox provision -> healthy            median {s:6.2f} s  runs {[round(x, 2) for x in sandbox]}")
    print(
        f"sandbox provision + attest -> healthy   median {a:6.2f} s  runs {[round(x, 2) for x in attested]}"
    )
    print(f"ratio sandbox / bare                    {s / b:6.2f}  (target <= 1.3)")
    print(f"ratio sandbox with attestation / bare   {a / b:6.2f}")
    base = "bare docker run of the same image -> healthy"
    emit(
        "provision",
        [
            figure("sandbox provision -> healthy", s, "s", base, b, "lower", "<= 1.3"),
            figure("sandbox provision + attestation -> healthy", a, "s", base, b),
        ],
    )


if __name__ == "__main__":
    main()
