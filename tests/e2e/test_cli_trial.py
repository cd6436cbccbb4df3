"""The command-line contract, end to end, as a user runs it on a fresh home directory.

``regsandbox trial run --json`` in a subprocess: a temporary Prefect server, the real Docker
engine, a real MLflow store holding the registered sample candidate.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pdf_links import links

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "examples" / "trials" / "diabetes-risk.yaml"
CONTRACT_KEYS = {"trial_id", "status", "endpoint", "mlflow_run_id", "report", "verdicts", "teardown_verified"}


def test_trial_run_json_contract(tmp_path: Path, docker_client) -> None:  # type: ignore[no-untyped-def]
    from mlflow import MlflowClient

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "REGSANDBOX_"))}
    env["REGSANDBOX_HOME"] = str(tmp_path / "home")
    bindir = Path(sys.executable).parent
    train = subprocess.run(
        [sys.executable, "-m", "examples.train_candidate"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert train.returncode == 0, train.stderr[-3000:]
    assert train.stdout.strip().endswith("models:/diabetes-risk@candidate")

    run = subprocess.run(
        [str(bindir / "regsandbox"), "trial", "run", str(SPEC), "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-5000:]
    outcome = json.loads(run.stdout.strip().splitlines()[-1])
    assert CONTRACT_KEYS <= set(outcome)
    assert outcome["status"] == "completed" and outcome["teardown_verified"] is True
    assert set(outcome["report"]) == {"json", "html", "pdf", "signature"}
    assert Path(outcome["report"]["json"]).is_file() and Path(outcome["report"]["html"]).is_file()
    assert set(outcome["verdicts"]) == {"SG", "MY", "TH", "ID", "PH", "VN"}
    assert set(outcome["verdicts"].values()) <= {"pass", "conditional", "fail"}
    assert "workload" in run.stderr  # progress goes to stderr, the JSON alone to stdout's last line
    # What a person reads: no error lines, no traceback, no progress line printed twice.
    assert "ERROR" not in run.stderr and "Traceback" not in run.stderr, run.stderr[-3000:]
    progress = [line for line in run.stderr.splitlines() if line.startswith("workload ")]
    assert progress and len(progress) == len(set(progress)), progress
    assert progress[-1].startswith("workload 100/100")

    # Every internal link of the PDF lands on a page of it, and every in-page link of the HTML is one.
    landed, unresolved, _ = links(Path(outcome["report"]["pdf"]).read_bytes())
    assert not unresolved, unresolved
    html = Path(outcome["report"]["html"]).read_text(encoding="utf-8")
    assert set(landed) == set(re.findall(r'href="#([^"]+)"', html))

    client = MlflowClient(f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}")
    mlrun = client.get_run(outcome["mlflow_run_id"])
    assert mlrun.data.params["model.uri"] == "models:/diabetes-risk@candidate"
    assert mlrun.data.params["jurisdictions"] == str(["SG", "MY", "TH", "ID", "PH", "VN"])
    assert len({m.step for m in client.get_metric_history(mlrun.info.run_id, "perf/auroc")}) > 1
    assert {a.path for a in client.list_artifacts(mlrun.info.run_id, "exit-report")} >= {
        "exit-report/report.json",
        "exit-report/report.html",
        "exit-report/report.json.sig",
    }
    left = docker_client.containers.list(
        all=True, filters={"label": f"regsandbox.trial_id={outcome['trial_id']}"}
    )
    assert not left

    verify = subprocess.run(
        [str(bindir / "regsandbox"), "report", "verify", outcome["report"]["json"]],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr
