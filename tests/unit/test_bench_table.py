"""``make bench``'s table: real benchmarks run through bench/table.py, and the baselines they use.

The table is built by running the real ``bench/table.py`` on real benchmarks (small sizes), so
what is checked is what ``make bench`` writes: a figure row with its in-run baseline and ratio,
and a benchmark that cannot run here (no Kubernetes cluster) listed as not run with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.bench_data import CONTRACT, LABEL, SENSITIVE, pandas_check
from bench.summary import PREFIX, not_run
from orchestrator.data.contract_plan import plan_checks
from orchestrator.data.contract_suites import load_contract
from orchestrator.data.contracts import validate
from orchestrator.data.synthetic import generate_sea_population

ROOT = Path(__file__).resolve().parents[2]


def test_table_lists_figures_and_a_bench_that_cannot_run_here(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["PYTHONPATH"] = str(ROOT)
    run = subprocess.run(
        [sys.executable, "bench/table.py", "--out", str(out), "--only", "synthetic,k8s_scale"]
        + ["--args", "synthetic=20000 2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    page = out.read_text()
    row = next(line for line in page.splitlines() if line.startswith("| synthetic |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1] == "sea-population generator, 20,000 rows"
    assert cells[3].startswith("bare numpy uniform draws")
    assert float(cells[5]) > 0 and cells[6] == "higher"
    not_run_part = page.split("Not run here (they cannot run on this machine):", 1)[1]
    assert "- `k8s_scale`: no Kubernetes cluster configured (KUBECONFIG is not set" in not_run_part
    assert "Benchmarks without figures" not in page
    assert "| k8s_scale |" not in page


def test_not_run_line_needs_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    not_run("example", "  no GPU on this machine ")
    line = capsys.readouterr().out.strip()
    assert line.startswith(PREFIX)
    assert json.loads(line[len(PREFIX) :]) == {
        "bench": "example",
        "figures": [],
        "not_run": "no GPU on this machine",
    }
    with pytest.raises(ValueError, match="reason"):
        not_run("example", " ")


def test_data_bench_pandas_baseline_agrees_with_great_expectations() -> None:
    # The baseline is only honest if it does the same checks: on a frame that breaks some of
    # them, both must fail exactly the same checks.
    frame = generate_sea_population({"TH": 1, "VN": 1}, 2_000, seed=3)
    frame.loc[:4, "bmi"] = 95.0  # above the contract's 12-70
    frame.loc[5:9, "sex"] = "unknown"
    frame.loc[10, "age"] = None
    checks = plan_checks(load_contract(CONTRACT), frame, LABEL, SENSITIVE).checks
    by_pandas = {(c.type, c.column, c.group) for c in checks if not pandas_check(frame, c)}
    result = validate(frame, CONTRACT, SENSITIVE, LABEL)
    by_gx = {(c.expectation, c.column, c.group) for c in result.checks if not c.success}
    assert result.evaluated == len(checks)
    assert by_pandas == by_gx
    assert ("expect_column_values_to_be_between", "bmi", None) in by_pandas
    assert ("expect_column_values_to_be_in_set", "sex", None) in by_pandas
    assert ("expect_column_values_to_not_be_null", "age", None) in by_pandas
