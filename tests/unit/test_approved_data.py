"""Approved-dataset intake (hash first, read-only copy, CSV and Parquet) and the data step on it."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from orchestrator.data.approved import intake_approved, resolve_approved_path
from orchestrator.data.prepare import prepare_trial_data
from orchestrator.data.synthetic import generate_sea_population
from orchestrator.errors import DataError
from orchestrator.spec import ApprovedData, TrialSpec, parse_spec

REF = "IRB-2026-113"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return generate_sea_population({"TH": 1, "VN": 1}, 1_200, seed=5)


def write(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def approved(path: Path, digest: str | None = None) -> ApprovedData:
    return ApprovedData(path=path, sha256=digest or sha256(path), approval_ref=REF)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_csv_and_parquet_load_with_provenance(tmp_path: Path, cohort: pd.DataFrame, suffix: str) -> None:
    source = write(cohort, tmp_path / "site" / f"cohort{suffix}")
    frame, provenance = intake_approved(approved(source), tmp_path / "work")
    pd.testing.assert_frame_equal(frame, cohort, check_dtype=False)
    assert pd.api.types.is_string_dtype(frame["case_id"])
    assert provenance.format == suffix[1:]
    assert provenance.rows == len(cohort)
    assert provenance.columns == list(cohort.columns)
    assert provenance.size_bytes == source.stat().st_size
    assert provenance.sha256 == sha256(source)
    assert provenance.approval_ref == REF
    assert provenance.source_path == str(source)
    copy = Path(provenance.path)
    assert copy == tmp_path / "work" / "approved" / source.name
    assert copy.read_bytes() == source.read_bytes()


def test_copy_is_read_only_and_a_rerun_replaces_it(tmp_path: Path, cohort: pd.DataFrame) -> None:
    source = write(cohort, tmp_path / "cohort.csv")
    _, first = intake_approved(approved(source), tmp_path / "work")
    assert mode(Path(first.path)) == 0o444
    _, again = intake_approved(approved(source), tmp_path / "work")
    assert again.path == first.path and mode(Path(again.path)) == 0o444
    assert sorted(p.name for p in (tmp_path / "work" / "approved").iterdir()) == ["cohort.csv"]


def test_hash_mismatch_names_the_file_and_both_hashes(tmp_path: Path, cohort: pd.DataFrame) -> None:
    source = write(cohort, tmp_path / "cohort.parquet")
    wrong = "0" * 64
    with pytest.raises(DataError) as caught:
        intake_approved(approved(source, wrong), tmp_path / "work")
    message = str(caught.value)
    assert str(source) in message and wrong in message and sha256(source) in message
    assert list((tmp_path / "work" / "approved").iterdir()) == []  # nothing unverified is left behind


def test_hash_is_checked_before_parsing(tmp_path: Path) -> None:
    garbage = tmp_path / "cohort.parquet"
    garbage.write_bytes(b"not a parquet file")
    with pytest.raises(DataError, match="does not match its approval"):
        intake_approved(approved(garbage, "1" * 64), tmp_path / "work")
    with pytest.raises(DataError, match="cannot parse approved data file .*cohort.parquet"):
        intake_approved(approved(garbage), tmp_path / "work")


def test_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.csv"
    with pytest.raises(DataError, match="nowhere.csv does not exist"):
        intake_approved(ApprovedData(path=missing, sha256="2" * 64, approval_ref=REF), tmp_path / "work")


def test_unknown_suffix_is_refused(tmp_path: Path) -> None:
    sheet = tmp_path / "cohort.xlsx"
    sheet.write_bytes(b"PK\x03\x04")
    with pytest.raises(DataError, match=r"cohort.xlsx has an unsupported format; use one of \.csv"):
        intake_approved(approved(sheet), tmp_path / "work")


def test_relative_paths_resolve_against_base_dir_else_cwd(
    tmp_path: Path, cohort: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write(cohort, tmp_path / "specs" / "data" / "cohort.csv")
    relative = ApprovedData(path=Path("data/cohort.csv"), sha256=sha256(source), approval_ref=REF)
    _, provenance = intake_approved(relative, tmp_path / "work", base_dir=tmp_path / "specs")
    assert provenance.source_path == str(source)

    monkeypatch.chdir(tmp_path / "specs")
    assert resolve_approved_path(Path("data/cohort.csv")) == source
    with pytest.raises(DataError, match="does not exist"):
        intake_approved(relative, tmp_path / "work", base_dir=tmp_path)


def test_integer_case_ids_in_parquet_become_text(tmp_path: Path, cohort: pd.DataFrame) -> None:
    numbered = cohort.assign(case_id=range(1, len(cohort) + 1))
    frame, _ = intake_approved(approved(write(numbered, tmp_path / "cohort.parquet")), tmp_path / "work")
    assert frame["case_id"].iloc[:3].tolist() == ["1", "2", "3"]


# --- the data step on approved data -------------------------------------------------------------------


def spec_for(path: Path, digest: str, **data: Any) -> TrialSpec:
    return parse_spec(
        {
            "name": "approved-trial",
            "sponsor": "acme-health",
            "intended_use": "Flag adults at risk of undiagnosed type 2 diabetes",
            "risk_class": "C",
            "model": {"uri": "models:/diabetes-risk@candidate"},
            "data": {
                "source": "approved",
                "approved": {"path": str(path), "sha256": digest, "approval_ref": REF},
            }
            | data,
            "jurisdictions": ["TH", "VN"],
            "workload": {"min_group_size": 20},
        }
    )


def test_prepare_approved_data(tmp_path: Path, cohort: pd.DataFrame) -> None:
    source = write(cohort, tmp_path / "specs" / "cohort.parquet")
    spec = spec_for(Path("cohort.parquet"), sha256(source))
    prepared = prepare_trial_data(spec, tmp_path / "work", base_dir=tmp_path / "specs")
    assert prepared.source == "approved" and prepared.generator is None
    assert prepared.approved is not None and prepared.approved.sha256 == sha256(source)
    assert prepared.path == tmp_path / "work" / "data.csv"
    assert prepared.sha256 == sha256(prepared.path)
    assert mode(prepared.path) == 0o444
    assert prepared.rows == len(cohort) == len(prepared.frame)
    assert not prepared.blocking and prepared.blocking_summary() == ""
    assert prepared.contract.suite == "generic-tabular"  # approved data without a contract of its own
    assert prepared.target_basis.endswith("jurisdictions, equally weighted")
    countries = {
        row.group: row.target_share for row in prepared.representativeness if row.attribute == "country"
    }
    assert countries == pytest.approx({"TH": 0.5, "VN": 0.5})
    assert "frame" not in prepared.model_dump(mode="json")

    # What the exit report receives (imported here: the report package must not hold up intake tests).
    from orchestrator.reports.model import DataValidation
    from orchestrator.reports.sections import ApprovedDataset, RepresentativenessRow

    provenance = ApprovedDataset(**(prepared.report_provenance() or {}))
    assert (provenance.path, provenance.sha256, provenance.format) == (
        "cohort.parquet",
        sha256(source),
        "parquet",
    )
    assert (provenance.rows, provenance.approval_ref) == (len(cohort), REF)
    assert DataValidation(**prepared.report_validation()).suite == "generic-tabular"
    rows = [RepresentativenessRow(**row) for row in prepared.report_representativeness()]
    assert {row.attribute for row in rows} == {"country", "sex", "age_band", "ethnicity"}


def test_prepare_returns_blocking_failures_instead_of_raising(tmp_path: Path, cohort: pd.DataFrame) -> None:
    broken = cohort.copy()
    broken.loc[0, "age"] = 7
    source = write(broken, tmp_path / "cohort.csv")
    spec = spec_for(source, sha256(source), expectations="clinical-tabular")
    prepared = prepare_trial_data(spec, tmp_path / "work")
    assert prepared.blocking
    assert prepared.blocking_summary().startswith("data contract clinical-tabular failed: age 18-110 years")
    assert prepared.path.exists()  # the data as used is kept as evidence of the failure


def test_prepare_names_missing_label_and_attributes(tmp_path: Path, cohort: pd.DataFrame) -> None:
    source = write(cohort.drop(columns=["ethnicity"]), tmp_path / "cohort.csv")
    spec = spec_for(source, sha256(source), label="outcome")
    with pytest.raises(DataError, match="no column\\(s\\) outcome, ethnicity"):
        prepare_trial_data(spec, tmp_path / "work")


def test_prepare_stops_on_a_tampered_file_before_reading_it(tmp_path: Path, cohort: pd.DataFrame) -> None:
    source = write(cohort, tmp_path / "cohort.csv")
    digest = sha256(source)
    with source.open("a") as handle:
        handle.write("c999999,TH,female,50,40-59,thai,0,24.0,120,0,0,5.1,0\n")
    with pytest.raises(DataError, match="does not match its approval"):
        prepare_trial_data(spec_for(source, digest), tmp_path / "work")
    assert not (tmp_path / "work" / "data.csv").exists()


def test_prepare_names_an_unknown_suite_before_writing(tmp_path: Path, cohort: pd.DataFrame) -> None:
    source = write(cohort, tmp_path / "cohort.csv")
    with pytest.raises(
        DataError, match="unknown data-contract suite 'genomics'; known suites: clinical-tabular"
    ):
        prepare_trial_data(spec_for(source, sha256(source), expectations="genomics"), tmp_path / "work")
    assert not (tmp_path / "work" / "data.csv").exists()
