"""``--backend kubernetes`` with no cluster configured stops at once with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SPEC = Path(__file__).parents[2] / "examples" / "trials" / "diabetes-risk.yaml"


@pytest.mark.parametrize(
    ("kubeconfig", "expected"),
    [("", "[kubernetes] no cluster configured"), ("/nonexistent/kubeconfig", "cannot load kubeconfig")],
)
def test_trial_run_without_a_cluster_fails_in_one_line(
    tmp_path: Path, kubeconfig: str, expected: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "REGSANDBOX_", "PREFECT_"))}
    env |= {"HOME": str(tmp_path), "KUBECONFIG": kubeconfig, "REGSANDBOX_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "trial", "run", str(SPEC), "--backend", "kubernetes"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], done.stderr
    assert "Traceback" not in done.stderr and "temporary Prefect server" not in done.stderr
