"""A sponsor's own data: the generic contract, a contract file of its own, and its case ids.

Real Great Expectations validation on a CKD cohort whose columns and codes share nothing with
the synthetic population (tests/sponsor_cohort.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from orchestrator.data.contracts import ContractResult, validate
from orchestrator.data.prepare import prepare_trial_data
from orchestrator.errors import DataError, SpecError
from orchestrator.spec import load_spec, parse_spec
from tests.sponsor_cohort import CONTRACT, ID_COLUMN, LABEL, SENSITIVE, ckd_cohort, sponsor_spec, write_csv

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return ckd_cohort(400, seed=1)


def generic(frame: pd.DataFrame, **kwargs: Any) -> ContractResult:
    sensitive = kwargs.pop("sensitive", SENSITIVE)
    return validate(frame, "generic-tabular", sensitive, LABEL, 30, kwargs.pop("id_column", ID_COLUMN))


def blocking(result: ContractResult) -> list[str]:
    return [failure.message for failure in result.blocking_failures]


# --- the generic contract ------------------------------------------------------------------------


def test_generic_contract_accepts_a_cohort_with_its_own_columns_and_codes(cohort: pd.DataFrame) -> None:
    result = generic(cohort)
    assert result.all_passed, result.failure_lines()
    checked = {(c.expectation, c.column) for c in result.checks}
    for feature in ("age", "egfr", "hba1c", "sbp", "uacr"):
        assert ("expect_column_unique_value_count_to_be_between", feature) in checked
    assert ("expect_column_values_to_be_unique", ID_COLUMN) in checked
    assert ("expect_column_values_to_be_in_set", LABEL) in checked
    assert {c.group for c in result.checks if c.column == "gender" and c.group} == {"M", "F"}
    # The synthetic population's contract refuses the same cohort: it is not its kind of data.
    clinical = validate(cohort, "clinical-tabular", SENSITIVE, LABEL, 30, ID_COLUMN)
    assert "required column systolic_bp is missing" in blocking(clinical)


def test_generic_contract_refuses_a_label_that_is_not_binary(cohort: pd.DataFrame) -> None:
    graded = cohort.assign(**{LABEL: cohort[LABEL] + (cohort["egfr"] < 30)})  # a 0/1/2 severity grade
    messages = blocking(generic(graded))
    assert any(m.startswith("label is binary (0 or 1): ") and "(e.g. 2" in m for m in messages), messages

    one_class = blocking(generic(cohort.assign(**{LABEL: 0})))
    assert one_class == ["label holds both outcomes (0 and 1): observed 1"]


def test_generic_contract_refuses_a_missing_sensitive_attribute(cohort: pd.DataFrame) -> None:
    result = generic(cohort.drop(columns=["region"]))
    assert blocking(result) == ["required column region is missing"]
    assert any(line.startswith("rows per region group: not evaluated") for line in result.not_evaluated)


def test_generic_contract_refuses_constant_and_empty_columns(cohort: pd.DataFrame) -> None:
    messages = blocking(generic(cohort.assign(site="KKU", egfr=float("nan"))))
    assert "site is not constant (at least 2 distinct values): observed 1" in messages
    assert "egfr is not empty (share of rows with a value above 0): observed 0.0" in messages


def test_subgroups_follow_min_group_size_and_rows_are_counted(cohort: pd.DataFrame) -> None:
    result = validate(cohort, "generic-tabular", SENSITIVE, LABEL, 100, ID_COLUMN)
    assert result.success  # small groups are advisory: insufficient evidence, not a stop
    small = {str(g) for a in SENSITIVE for g, n in cohort[a].value_counts().items() if n < 100}
    assert small and {f.group for f in result.advisory_failures} == small
    few = generic(cohort.head(60))
    assert any(m.startswith("at least 100 cases") for m in blocking(few))


# --- case ids ----------------------------------------------------------------------------------


def prepare(tmp_path: Path, frame: pd.DataFrame, **data: Any) -> Any:
    digest = write_csv(frame, tmp_path / "cohort.csv")
    approved = {"path": str(tmp_path / "cohort.csv"), "sha256": digest, "approval_ref": "TH-IRB-2026-031"}
    spec = parse_spec(
        sponsor_spec("models:/ckd@candidate", {"source": "approved", "approved": approved} | data)
    )
    return prepare_trial_data(spec, tmp_path / "work")


def test_sponsor_id_column_becomes_the_case_id(tmp_path: Path, cohort: pd.DataFrame) -> None:
    prepared = prepare(tmp_path, cohort)
    assert not prepared.blocking, prepared.contract.failure_lines()
    assert prepared.contract.suite == "generic-tabular" and prepared.id_column == ID_COLUMN
    assert ID_COLUMN not in prepared.frame.columns
    assert prepared.frame["case_id"].tolist() == cohort[ID_COLUMN].tolist()
    assert pd.read_csv(prepared.path, nrows=1).columns[0] == "case_id"


def test_data_without_ids_is_numbered_or_named(tmp_path: Path, cohort: pd.DataFrame) -> None:
    anonymous = cohort.drop(columns=[ID_COLUMN])
    with pytest.raises(DataError, match=r"no column 'patient_ref' .*data\.id_column: null"):
        prepare(tmp_path, anonymous)
    prepared = prepare(tmp_path, anonymous, id_column=None)
    assert prepared.frame["case_id"].head(3).tolist() == ["row-1", "row-2", "row-3"]
    assert any("case ids are unique: not evaluated" in line for line in prepared.contract.not_evaluated)


def test_duplicate_ids_stop_the_trial_whatever_the_contract(tmp_path: Path, cohort: pd.DataFrame) -> None:
    twice = cohort.assign(**{ID_COLUMN: cohort[ID_COLUMN].where(cohort.index != 5, "HN-50004")})
    (tmp_path / "loose.yaml").write_text(LOOSE)  # a contract that does not look at the ids
    with pytest.raises(DataError, match=r"1 id\(s\) used more than once \(e\.g\. HN-50004\)"):
        prepare(tmp_path, twice, expectations=str(tmp_path / "loose.yaml"))


# --- a contract file of the sponsor's ----------------------------------------------------------------


def write_spec(folder: Path, frame: pd.DataFrame, contract: str | None = CONTRACT, **data: Any) -> Path:
    """spec.yaml in ``folder``, naming its data and contract by paths relative to itself."""
    digest = write_csv(frame, folder / "data" / "cohort.csv")
    approved = {"path": "data/cohort.csv", "sha256": digest, "approval_ref": "TH-IRB-2026-031"}
    section = {"source": "approved", "approved": approved, "expectations": "contracts/ckd.yaml"} | data
    if contract is not None:
        (folder / "contracts").mkdir(parents=True, exist_ok=True)
        (folder / "contracts" / "ckd.yaml").write_text(contract)
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(sponsor_spec("models:/ckd@candidate", section)))
    return path


def test_contract_file_is_read_next_to_the_spec(
    tmp_path: Path, cohort: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_spec(tmp_path / "specs", cohort)
    monkeypatch.chdir(tmp_path)  # anywhere but next to the spec
    spec = load_spec("specs/spec.yaml")
    contract = tmp_path / "specs" / "contracts" / "ckd.yaml"
    assert spec.data.expectations == str(contract)

    prepared = prepare_trial_data(spec, tmp_path / "work")
    assert prepared.contract.all_passed, prepared.contract.failure_lines()
    assert prepared.contract.suite == "ckd-progression-cohort"
    assert prepared.contract.source is not None and str(contract) in prepared.contract.source
    assert "sha256 " in prepared.contract.source
    assert any(c.detail.startswith("region is a health-region code") for c in prepared.contract.checks)

    miscoded = cohort.assign(region=cohort["region"].where(cohort.index != 3, "Bangkok"))
    spec = load_spec(write_spec(tmp_path / "again", miscoded))
    failures = prepare_trial_data(spec, tmp_path / "work2").contract.failure_lines()
    assert "[blocking] region is a health-region code: 1 of 400 rows fail (e.g. Bangkok)" in failures


def _mutated(edit: Any) -> str:
    raw = yaml.safe_load(CONTRACT)
    edit(raw)
    return yaml.safe_dump(raw)


@pytest.mark.parametrize(
    ("contract", "problem"),
    [
        (_mutated(lambda c: c["expectations"][2].update(severity="fatal")),
         "expectations.2.severity: Input should be 'blocking' or 'advisory'"),
        (_mutated(lambda c: c.update(thresholds={"egfr": 60})), "thresholds: unknown field"),
        (_mutated(lambda c: c["expectations"][2].update(column="creatinine")),
         "expectations name undeclared columns: creatinine"),
        (_mutated(lambda c: c.pop("subgroups")), "subgroups: Field required"),
        ("schema: [regsandbox\n", "is not valid YAML (line 2)"),
        (None, "cannot read data-contract file"),
    ],
    ids=["bad-severity", "unknown-field", "undeclared-column", "missing-field", "not-yaml", "no-file"],
)  # fmt: skip
def test_malformed_contract_file_is_refused_naming_the_file_and_the_field(
    tmp_path: Path, cohort: pd.DataFrame, contract: str | None, problem: str
) -> None:
    path = write_spec(tmp_path, cohort, contract)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    [line] = caught.value.problems
    assert line.startswith("data.expectations: ") and str(tmp_path / "contracts" / "ckd.yaml") in line
    assert problem in line, line


def test_trial_validate_names_the_broken_contract(tmp_path: Path, cohort: pd.DataFrame) -> None:
    path = write_spec(tmp_path, cohort, _mutated(lambda c: c["expectations"][2].update(severity="fatal")))
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "trial", "validate", str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "data.expectations: data-contract file" in done.stdout + done.stderr
    assert "expectations.2.severity" in done.stdout + done.stderr


def test_expectations_name_a_suite_or_a_yaml_file(tmp_path: Path, cohort: pd.DataFrame) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(write_spec(tmp_path / "a", cohort, expectations="Renal Contract"))
    assert caught.value.problems[0].startswith("data.expectations: Value error, name a built-in suite")
    with pytest.raises(SpecError) as caught:
        load_spec(write_spec(tmp_path / "b", cohort, expectations="renal-cohort"))
    assert "data.expectations: unknown data-contract suite 'renal-cohort'" in caught.value.problems[0]
    assert "generic-tabular" in caught.value.problems[0]


LOOSE = """\
schema: regsandbox/data-contract/v1
name: label-only
description: only the label is looked at
required_columns: ["{label}"]
subgroups: {min_rows: 1, severity: advisory, description: any group size}
expectations: []
"""
