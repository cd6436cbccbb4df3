"""Where a warm ``make demo`` spends its time, phase by phase and step by step.

Runs what ``make demo`` runs, warm (venv, base image and model-server image already there), as a
user would: the prerequisite checks, the sample candidate's training and registration, then
``regsandbox trial run`` on the sample trial. The trial's own event journal (in its report)
splits the run into start-up (imports, Prefect), each lifecycle step, and shut-down. The same
trial is then run again through the lifecycle alone, in one process without Prefect, as the
baseline: the ratio says what the command line and Prefect add.

    python bench/bench_demo.py [--home DIR] [--checkout DIR]

``--checkout`` measures another checkout of the project (an earlier commit, say) with this
environment, the same way, so that before and after are compared on one machine in one sitting.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.summary import emit, figure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SPEC = ROOT / "examples" / "trials" / "diabetes-risk.yaml"
# The journal's states, in order; the time between two is the step that leads to the second.
MARKS = [
    ("submitted", "start-up (imports, Prefect server, flow run)"),
    ("admitted", "admit (profiles, template, MLflow run)"),
    ("data_ready", "prepare data (generate, contract, fetch model)"),
    ("provisioned", "provision (network, firewall, slot)"),
    ("attested", "attest (isolation probes)"),
    ("deployed", "deploy (model server healthy, gateway)"),
    ("workload_done", "run workload (evaluation traffic)"),
    ("monitored", "monitor (final values, flush to MLflow)"),
    ("assessed", "assess (six profiles)"),
    ("teardown", "teardown (verified)"),
]


def timed(cmd: list[str], env: dict[str, str], cwd: Path = ROOT) -> tuple[float, str]:
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return time.monotonic() - started, proc.stdout


def breakdown(report_path: str, started: dt.datetime, ended: dt.datetime) -> list[tuple[str, float]]:
    report = json.loads(Path(report_path).read_text())
    at = {}
    for event in report["events"]:
        at.setdefault(event["kind"], dt.datetime.fromisoformat(event["at"].replace("Z", "+00:00")))
    rows, previous = [], started
    for kind, label in MARKS:
        if kind in at:
            rows.append((label, (at[kind] - previous).total_seconds()))
            previous = at[kind]
    # The report is stamped before it is rendered; the signature is the last file written.
    signature = Path(report_path).with_name(Path(report_path).name + ".sig")
    finished = dt.datetime.fromtimestamp(signature.stat().st_mtime, dt.UTC)
    rows.append(("report (JSON, HTML, PDF, signature)", (finished - previous).total_seconds()))
    rows.append(("shut-down (close run, exit)", (ended - finished).total_seconds()))
    return rows


def lifecycle_only(env: dict[str, str], cwd: Path) -> float | None:
    if not (cwd / "orchestrator" / "lifecycle.py").is_file():
        return None  # a checkout from before the lifecycle module
    code = (
        "import time, uuid; from orchestrator.spec import load_spec; from orchestrator.settings import "
        "get_settings; from orchestrator.lifecycle import run_lifecycle; t=time.monotonic(); "
        f"o=run_lifecycle(load_spec({str(SPEC)!r}), 'bench-'+uuid.uuid4().hex[:8], get_settings()); "
        "assert o.status == 'completed', o.error; print(time.monotonic()-t)"
    )
    seconds, out = timed([str(BIN / "python"), "-c", code], env, cwd)
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="platform home (default: a temporary one)")
    parser.add_argument("--checkout", type=Path, default=ROOT, help="checkout to measure (default: this one)")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="bench-demo-"))
    cwd = args.checkout.resolve()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env["REGSANDBOX_HOME"] = str(home)
    env["PYTHONPATH"] = str(cwd)  # the checkout's code, whatever the environment has installed
    make = ["make", "-s", "system", "setup", "base-image"]
    train = [str(BIN / "python"), "-m", "examples.train_candidate"]
    run = [
        str(BIN / "python"),
        "-m",
        "orchestrator.cli",
        "trial",
        "run",
        str(cwd / SPEC.relative_to(ROOT)),
        "--json",
    ]
    timed(train, env, cwd)  # the first training creates the stores; the demo is measured warm
    timed(run, env, cwd)
    prerequisites, _ = timed(make, env)
    training, _ = timed(train, env, cwd)
    started = dt.datetime.now(dt.UTC)
    trial_s, out = timed(run, env, cwd)
    ended = dt.datetime.now(dt.UTC)
    outcome = json.loads(out.strip().splitlines()[-1])
    bare = lifecycle_only(env, cwd)
    total = prerequisites + training + trial_s
    print(f"warm make demo of {cwd}, measured in parts: {total:.1f} s  (home {home})")
    print(f"  {'make prerequisites (system, setup, base-image)':<52} {prerequisites:6.1f} s")
    print(f"  {'train and register the sample candidate':<52} {training:6.1f} s")
    print(f"  {'regsandbox trial run':<52} {trial_s:6.1f} s")
    for label, seconds in breakdown(outcome["report"]["json"], started, ended):
        print(f"    {label:<50} {seconds:6.1f} s")
    if bare is not None:
        print(f"lifecycle alone, same trial, no CLI or Prefect:          {bare:6.1f} s")
        print(f"ratio trial run / lifecycle alone:                       {trial_s / bare:6.2f}")
        emit(
            "demo",
            [
                figure(
                    "regsandbox trial run (CLI, Prefect)", trial_s, "s", "lifecycle alone, one process", bare
                )
            ],
        )


if __name__ == "__main__":
    main()
