"""The reference population drift is measured against: generated, approved (hash-checked), or
none, in which case drift is reported as not assessed and policies read it as missing evidence."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from monitors.base import EvalBatch
from monitors.drift import DriftMonitor
from orchestrator.data.reference import NOT_DECLARED, load_reference
from orchestrator.errors import DataError
from orchestrator.policy import assess, load_profile
from orchestrator.spec import ApprovedData, ReferenceData, TrialSpec, load_spec, parse_spec
from tests.sponsor_cohort import FEATURES, ckd_cohort, sponsor_spec, write_csv

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "trials" / "diabetes-risk.yaml"


def approved_spec(folder: Path, **data: Any) -> Path:
    """A spec of the sponsor's with its approved trial data, written in ``folder``."""
    digest = write_csv(ckd_cohort(300, seed=1), folder / "cohort.csv")
    section = {
        "source": "approved",
        "approved": {"path": "cohort.csv", "sha256": digest, "approval_ref": "IRB-1"},
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(sponsor_spec("models:/ckd@candidate", section | data)))
    return path


def batch(n: int = 20) -> EvalBatch:
    return EvalBatch(np.zeros(n), np.full(n, 0.5), {}, np.zeros(1), np.ones(1, dtype=bool))


def test_approved_reference_is_checked_by_its_hash(tmp_path: Path) -> None:
    development = ckd_cohort(600, seed=2, development=True)
    digest = write_csv(development, tmp_path / "specs" / "dev" / "development.csv")
    reference = {"path": "dev/development.csv", "sha256": digest, "approval_ref": "DUA-2025-041"}
    spec = load_spec(approved_spec(tmp_path / "specs", reference=reference))
    assert isinstance(spec.data.reference, ApprovedData)
    assert spec.data.reference.path == tmp_path / "specs" / "dev" / "development.csv"

    found = load_reference(spec, tmp_path / "work", FEATURES)
    assert found.assessed and found.kind == "approved" and found.frame is not None
    assert len(found.frame) == 600 and found.features == FEATURES and found.not_compared == []
    assert found.approved is not None and found.approved.sha256 == digest
    copy = Path(found.approved.path)
    assert copy.parent == tmp_path / "work" / "reference" and stat.S_IMODE(copy.stat().st_mode) == 0o444
    assert "development.csv" in found.description and digest in found.description
    assert "DUA-2025-041" in found.description
    assert found.summary()["sha256"] == digest

    with (tmp_path / "specs" / "dev" / "development.csv").open("a") as handle:
        handle.write("HN-99999,50,M,BKK,90.0,6.0,120.0,10.0,0\n")
    with pytest.raises(DataError, match="development.csv does not match its approval"):
        load_reference(spec, tmp_path / "work2", FEATURES)


def test_approved_data_without_a_reference_is_not_assessed(tmp_path: Path) -> None:
    spec = load_spec(approved_spec(tmp_path))
    assert spec.data.reference is None
    found = load_reference(spec, tmp_path / "work", FEATURES)
    assert not found.assessed and found.kind == "none" and found.reason == NOT_DECLARED
    assert found.features == []

    monitor = found.drift_monitor()
    assert monitor.update(batch(), 1) == []  # nothing streams as if drift had been measured
    result = monitor.result()
    assert result.values == {"drift/assessed": 0.0, "drift/max_psi": None, "drift/max_ks": None}
    assert result.notes == [f"drift not assessed: {NOT_DECLARED}"]
    assert result.figures["drift_psi"]["not_assessed"] == NOT_DECLARED

    assessment = assess(load_profile("TH"), result.values, {})
    drift = [c for c in assessment.criteria if c.metric.startswith("drift/")]
    assert drift and {c.outcome for c in drift} == {"insufficient evidence"}
    assert assessment.verdict != "pass"


def test_a_reference_sharing_no_model_input_is_not_assessed(tmp_path: Path) -> None:
    # The synthetic reference population, asked for by a sponsor whose model reads other columns.
    spec = load_spec(approved_spec(tmp_path, reference={"rows": 500}))
    assert isinstance(spec.data.reference, ReferenceData)
    found = load_reference(spec, tmp_path / "work", ["egfr", "hba1c", "gender"])
    assert not found.assessed and found.kind == "generator"
    assert (
        found.reason is not None and "holds none of the model's inputs (egfr, hba1c, gender)" in found.reason
    )
    assert found.drift_monitor().result().values["drift/assessed"] == 0.0

    partly = load_reference(spec, tmp_path / "work", FEATURES)  # only age is shared
    assert partly.assessed and partly.features == ["age"]
    assert partly.not_compared == ["gender", "egfr", "hba1c", "sbp"]
    notes = partly.drift_monitor().result().notes
    assert "inputs it lacks, not compared: gender, egfr, hba1c, sbp" in notes[0]


def test_synthetic_trials_keep_the_generated_reference(tmp_path: Path) -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    spec = parse_spec(data)
    assert spec.data.reference == ReferenceData() and spec.data.contract == "clinical-tabular"
    data["data"]["reference"] = {"rows": 1000}
    found = load_reference(parse_spec(data), tmp_path, ["age", "sex", "bmi", "systolic_bp"])
    assert found.assessed and found.frame is not None and len(found.frame) == 1000
    assert found.description == "reference-population generator, 1,000 rows, seed 2024"

    data["data"]["reference"] = None  # an explicit "none"
    assert not load_reference(parse_spec(data), tmp_path, ["age"]).assessed


def test_spec_with_sponsor_files_survives_a_json_round_trip(tmp_path: Path) -> None:
    # The Prefect flow receives the spec as JSON; the reference must come back as a dataset.
    digest = write_csv(ckd_cohort(150, seed=3, development=True), tmp_path / "development.csv")
    reference = {"path": "development.csv", "sha256": digest, "approval_ref": "DUA-2025-041"}
    spec = load_spec(approved_spec(tmp_path, reference=reference))
    again = TrialSpec.model_validate(spec.model_dump(mode="json"))
    assert again == spec and isinstance(again.data.reference, ApprovedData)
    assert again.data.contract == "generic-tabular"


def test_a_monitor_without_reference_needs_a_reason() -> None:
    with pytest.raises(ValueError, match="needs the reason"):
        DriftMonitor(None, [])


def test_the_report_says_not_assessed_and_names_the_reference() -> None:
    from orchestrator.reports.html import render_html
    from orchestrator.reports.sample import sample_report

    report = sample_report()
    reason = "no reference population is declared (data.reference)"
    missing = DriftMonitor(None, [], reason=reason).result()
    html = render_html(report.model_copy(update={"monitors": [*report.monitors[:-1], missing]}))
    assert 'id="drift-not-assessed"' in html and reason in html
    assert '<table id="drift">' not in html

    reference = pd.DataFrame({"egfr": np.linspace(20, 120, 200)})
    drift = DriftMonitor(reference, ["egfr"], source="approved dataset /data/development.csv")
    drift.update(EvalBatch(np.zeros(3), np.zeros(3), {}, np.zeros(1), np.ones(1, dtype=bool),
                           features={"egfr": np.array([30.0, 40.0, 50.0])}), 1)  # fmt: skip
    html = render_html(report.model_copy(update={"monitors": [*report.monitors[:-1], drift.result()]}))
    assert "Reference population: approved dataset /data/development.csv" in html
    assert '<table id="drift">' in html
