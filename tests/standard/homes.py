"""Platform homes for the shared-standard tests, each with its own key, and the CLI run in them.

The reports come from ``tests/fixtures/trial_reports``: two real trials, written by the real
report builder. A home "issues" them by writing them again with its own key through the real
report writer, so each instance signs with a key of its own, as two deployed sandboxes would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from orchestrator.reports import load_report, write_report
from orchestrator.settings import Settings
from orchestrator.store import Trial, session_scope

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "trial_reports"
TRIALS = ("diabetes-risk-screening-5613cc47", "diabetes-risk-resubmission-2911c4e6")


def stored(trial_id: str) -> dict:  # type: ignore[type-arg]
    """The fixture report as plain JSON, read without any of the platform's code."""
    return json.loads((FIXTURES / trial_id / "report.json").read_bytes())


def issue(home: Path, trial_id: str) -> Path:
    """The fixture trial's report, written and signed in ``home`` as that platform's own."""
    folder = home / "reports" / trial_id
    write_report(load_report(FIXTURES / trial_id / "report.json"), folder, home / "keys", pdf=False)
    return folder


def cli(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``regsandbox ARGS`` in a fresh process whose platform home is ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGSANDBOX_", "MLFLOW_", "PREFECT_"))}
    env["REGSANDBOX_HOME"] = str(home)
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        cwd=home.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done


def register(settings: Settings, trial_id: str) -> None:
    """The trial's row in the platform database, as the lifecycle publishes it when it runs here."""
    report = load_report(settings.reports_dir / trial_id / "report.json")
    with session_scope(settings) as db:
        db.add(
            Trial(
                trial_id=trial_id,
                name=report.trial.name,
                sponsor=report.trial.sponsor,
                jurisdictions=list(report.trial.jurisdictions),
                spec=report.trial.spec,
                status=report.status,
                state="reported",
                verdicts=dict(report.verdicts),
                finished_at=report.finished_at,
            )
        )
