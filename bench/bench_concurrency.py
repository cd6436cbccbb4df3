"""Wall time of N trials run at once against the same N run one after another.

The platform stack is the one ``regsandbox up`` starts (a Prefect server and an MLflow
server, shared by every trial); each trial is a ``regsandbox trial run`` process, as a
runner would start it. Prints both wall times and their ratio (lower is better; 1.0 means
no gain from running trials side by side).

    python bench/bench_concurrency.py [--trials 8] [--rows 1000]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.summary import emit, figure  # noqa: E402
from orchestrator.settings import Settings  # noqa: E402
from orchestrator.stack_services import services  # noqa: E402
from tests.integration.models import candidate_model  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_trials(count: int, spec: Path, env: dict[str, str], concurrent: bool) -> tuple[float, list[int]]:
    command = [str(Path(sys.executable).parent / "regsandbox"), "trial", "run", str(spec), "--json"]
    logs = [spec.parent / f"trial-{'c' if concurrent else 's'}{i}.log" for i in range(count)]
    started = time.perf_counter()
    codes = []
    if concurrent:
        handles = [log.open("wb") for log in logs]
        procs = [subprocess.Popen(command, env=env, stdout=h, stderr=subprocess.STDOUT) for h in handles]
        codes = [p.wait() for p in procs]
        for handle in handles:
            handle.close()
    else:
        for log in logs:
            with log.open("wb") as handle:
                codes.append(
                    subprocess.run(command, env=env, stdout=handle, stderr=subprocess.STDOUT).returncode
                )
    elapsed = time.perf_counter() - started
    for code, log in zip(codes, logs, strict=True):
        if code != 0:  # show why, once: a failed trial makes the timing meaningless
            print(
                f"--- {log.name} exited {code}:\n" + log.read_text(errors="replace")[-3000:], file=sys.stderr
            )
            break
    return elapsed, codes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        settings = Settings(home=home)
        settings.ensure_dirs()
        # The servers trials talk to; the platform API is not part of this measurement.
        stack = services(settings, "127.0.0.1", free_port(), free_port(), free_port())[:2]
        for service in stack:
            service.start()
        try:
            for service in stack:
                service.wait_healthy()
            prefect, mlflow = stack
            spec = yaml.safe_load((ROOT / "examples" / "trials" / "diabetes-risk.yaml").read_text())
            spec["model"]["uri"] = str(candidate_model(Path(tmp) / "model"))
            spec["data"]["synthetic"]["rows"] = args.rows
            spec_path = Path(tmp) / "spec.yaml"
            spec_path.write_text(yaml.safe_dump(spec))
            env = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("PREFECT_", "MLFLOW_", "REGSANDBOX_"))
            }
            env.update(
                REGSANDBOX_HOME=str(home),
                REGSANDBOX_MAX_SANDBOXES=str(args.trials),
                PREFECT_API_URL=f"{prefect.ui_url}/api",
                MLFLOW_TRACKING_URI=mlflow.ui_url,
            )
            run_trials(1, spec_path, env, concurrent=False)  # warm caches (image, imports) for both sides
            sequential, seq_codes = run_trials(args.trials, spec_path, env, concurrent=False)
            concurrent, con_codes = run_trials(args.trials, spec_path, env, concurrent=True)
        finally:
            for service in reversed(stack):
                service.stop()
    print(f"{args.trials} trials sequential    {sequential:7.1f} s   exit codes {seq_codes}")
    print(f"{args.trials} trials concurrent    {concurrent:7.1f} s   exit codes {con_codes}")
    print(f"ratio concurrent / sequential {concurrent / sequential:7.2f}   ({os.cpu_count()} cores)")
    emit(
        "concurrency",
        [
            figure(
                f"{args.trials} trials at once",
                concurrent,
                "s",
                "the same trials one after another",
                sequential,
            )
        ],
    )


if __name__ == "__main__":
    main()
