"""Data contracts: real Great Expectations validation of the clinical-tabular suite."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError

from orchestrator.data.contract_suites import SuiteDefinition, known_suites, load_suite
from orchestrator.data.contracts import ContractFailure, ContractResult, validate
from orchestrator.data.synthetic import generate_sea_population
from orchestrator.errors import DataError

SENSITIVE = ["sex", "age_band", "ethnicity", "country"]
LABEL = "diabetes"
ROWS = 6_000


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    return generate_sea_population(dict.fromkeys(["SG", "MY", "TH", "ID", "PH", "VN"], 1), ROWS, seed=21)


def run(frame: pd.DataFrame, **kwargs: Any) -> ContractResult:
    return validate(frame, "clinical-tabular", kwargs.pop("sensitive", SENSITIVE), LABEL, **kwargs)


def only(failures: list[ContractFailure], expectation: str, column: str | None) -> ContractFailure:
    hits = [f for f in failures if f.expectation == expectation and f.column == column]
    assert len(hits) == 1, [f.message for f in failures]
    return hits[0]


def test_generator_data_passes_clinical_tabular(clean: pd.DataFrame) -> None:
    # Small ethnic groups (e.g. "other") fall under 100 rows in a 6,000-row mix: advisory only.
    result = run(clean)
    assert result.success
    assert result.blocking_failures == []
    assert {f.expectation for f in result.advisory_failures} <= {"expect_table_row_count_to_be_between"}
    assert result.not_evaluated == []

    everything = run(clean, min_group_rows=5)
    assert everything.all_passed, everything.failure_lines()
    assert everything.evaluated == everything.gx_result["statistics"]["evaluated_expectations"] > 40
    assert everything.gx_result["success"] is True


def test_gx_result_is_json_and_carries_severities(clean: pd.DataFrame) -> None:
    result = run(clean)
    raw = json.loads(json.dumps(result.gx_result))
    assert raw["suite_name"] == "clinical-tabular"
    severities = {item["expectation_config"]["severity"] for item in raw["results"]}
    assert severities == {"critical", "warning"}
    subgroup = [
        item
        for item in raw["results"]
        if item["expectation_config"]["kwargs"].get("row_condition", {}).get("parameter") == "VN"
    ]
    assert subgroup and subgroup[0]["result"]["observed_value"] == (clean["country"] == "VN").sum()


def test_out_of_range_age_is_a_blocking_failure_with_counts(clean: pd.DataFrame) -> None:
    frame = clean.copy()
    frame.loc[[3, 7], "age"] = [130, 12]
    result = run(frame)
    assert not result.success
    failure = only(result.blocking_failures, "expect_column_values_to_be_between", "age")
    assert failure.severity == "blocking"
    assert (failure.unexpected_count, failure.element_count) == (2, ROWS)
    assert "130" in failure.message and "12" in failure.message
    assert len(result.blocking_failures) == 1


def test_null_in_required_column_is_a_blocking_failure(clean: pd.DataFrame) -> None:
    frame = clean.copy()
    frame.loc[[0, 1, 2], "bmi"] = None
    result = run(frame)
    assert not result.success
    failure = only(result.blocking_failures, "expect_column_values_to_not_be_null", "bmi")
    assert failure.unexpected_count == 3
    assert [f.column for f in result.blocking_failures] == ["bmi"]


def test_missing_column_fails_presence_and_skips_its_rules(clean: pd.DataFrame) -> None:
    result = run(clean.drop(columns=["fasting_glucose"]))
    assert not result.success
    failure = only(result.blocking_failures, "expect_column_to_exist", "fasting_glucose")
    assert failure.message == "required column fasting_glucose is missing"
    assert len(result.blocking_failures) == 1  # no cascade of errors from rules on the absent column
    assert any("fasting glucose 2-35" in line for line in result.not_evaluated)


def test_missing_sensitive_attribute_is_blocking(clean: pd.DataFrame) -> None:
    result = run(clean, sensitive=[*SENSITIVE, "region"])
    only(result.blocking_failures, "expect_column_to_exist", "region")
    assert any(line.startswith("rows per region group") for line in result.not_evaluated)


def test_subgroup_under_the_minimum_is_flagged(clean: pd.DataFrame) -> None:
    few_vn = (
        clean[clean["country"] != "VN"].index.tolist() + clean[clean["country"] == "VN"].index[:40].tolist()
    )
    result = run(clean.loc[few_vn].reset_index(drop=True))
    assert result.success  # advisory: the monitors report the group as insufficient evidence
    vn = [f for f in result.advisory_failures if f.column == "country" and f.group == "VN"]
    assert len(vn) == 1
    assert vn[0].observed == 40
    assert vn[0].message == "country = VN: 40 rows, fewer than 100"
    assert not [f for f in result.advisory_failures if f.column == "country" and f.group != "VN"]

    stricter = run(clean, min_group_rows=1_100)  # about 1,000 rows per country
    assert {f.group for f in stricter.advisory_failures if f.column == "country"} == set(clean["country"])


@pytest.mark.parametrize(
    ("edit", "expectation", "column"),
    [
        (lambda f: f.assign(diabetes=0), "expect_column_mean_to_be_between", "diabetes"),
        (lambda f: f.assign(diabetes=f["diabetes"] * 2), "expect_column_values_to_be_in_set", "diabetes"),
        (lambda f: f.assign(sex=f["sex"].replace("male", "M")), "expect_column_values_to_be_in_set", "sex"),
        (lambda f: f.assign(fasting_glucose=f["fasting_glucose"] * 18), "expect_column_values_to_be_between",
         "fasting_glucose"),  # mg/dL instead of mmol/L
        (lambda f: f.assign(case_id="c1"), "expect_column_values_to_be_unique", "case_id"),
        (lambda f: f.assign(age=f["age"].astype(str)), "expect_column_values_to_be_in_type_list", "age"),
    ],
    ids=["no-positives", "label-not-binary", "sex-coding", "glucose-units", "duplicate-ids", "age-as-text"],
)  # fmt: skip
def test_clinical_rules_block(clean: pd.DataFrame, edit: Any, expectation: str, column: str) -> None:
    result = run(edit(clean.copy()))
    assert not result.success
    failure = only(result.blocking_failures, expectation, column)
    assert failure.severity == "blocking"
    assert failure.observed is not None or failure.unexpected_count


def test_uncomputable_blocking_rule_fails_closed(clean: pd.DataFrame) -> None:
    frame = clean.copy()
    frame["bmi"] = frame["bmi"].astype(object)
    frame.loc[0, "bmi"] = "n/a"
    result = run(frame)
    failure = only(result.blocking_failures, "expect_column_values_to_be_between", "bmi")
    assert "could not be evaluated" in failure.message


def test_optional_columns_are_checked_only_when_present(clean: pd.DataFrame) -> None:
    result = run(clean.drop(columns=["urban"]), min_group_rows=5)
    assert result.all_passed
    assert result.not_evaluated == [
        "urban residence is 0 or 1: not evaluated, optional column urban is absent"
    ]

    frame = clean.copy()
    frame.loc[0, "smoking"] = None
    nulls = run(frame, min_group_rows=5)
    assert nulls.success  # nulls in an optional column are advisory
    only(nulls.advisory_failures, "expect_column_values_to_not_be_null", "smoking")


def test_advisory_case_mix_rule(clean: pd.DataFrame) -> None:
    result = run(clean.assign(bmi=clean["bmi"] + 15), min_group_rows=5)
    assert result.success
    failure = only(result.advisory_failures, "expect_column_mean_to_be_between", "bmi")
    assert isinstance(failure.observed, float) and failure.observed > 35


def test_report_fields_fit_the_exit_report(clean: pd.DataFrame) -> None:
    # Imported here so the contract tests above still run while the report package is being changed.
    from orchestrator.reports.model import DataValidation

    frame = clean.copy()
    frame.loc[0, "age"] = 5
    result = run(frame)
    validation = DataValidation(**result.report_fields())
    assert validation.suite == "clinical-tabular"
    assert validation.success is False
    assert validation.failures[0].startswith("[blocking] age 18-110 years")
    assert any(line.startswith("[advisory] ") for line in validation.failures)
    assert validation.checks is not None and len(validation.checks) == result.evaluated
    assert sum(not check.success for check in validation.checks) == len(validation.failures)
    age = [
        c for c in validation.checks if c.name == "expect_column_values_to_be_between" and c.column == "age"
    ]
    assert age[0].detail == "age 18-110 years (the intended use is adults): 1 of 6,000 rows fail (e.g. 5)"
    label = [
        c for c in validation.checks if c.name == "expect_column_mean_to_be_between" and c.column == LABEL
    ]
    assert label[0].success and label[0].detail.startswith(
        "positive share of the label between 2% and 60%: observed"
    )


def test_unknown_suite_names_the_known_ones(clean: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="clinical-tabular") as caught:
        validate(clean, "imaging-dicom", SENSITIVE, LABEL)
    assert "imaging-dicom" in str(caught.value)


def test_every_suite_file_loads() -> None:
    assert "clinical-tabular" in known_suites()
    for name in known_suites():
        suite = load_suite(name)
        assert suite.name == name
        assert all(rule.description for rule in suite.expectations)


def test_suite_definitions_reject_undeclared_columns() -> None:
    raw = load_suite("clinical-tabular").model_dump(by_alias=True)
    raw["expectations"].append(
        {
            "type": "expect_column_values_to_be_between",
            "column": "hba1c",
            "severity": "blocking",
            "description": "x1c",
        }
    )
    with pytest.raises(ValidationError, match="hba1c"):
        SuiteDefinition.model_validate(raw)
    raw["expectations"].pop()
    raw["expectations"][0]["severity"] = "fatal"
    with pytest.raises(ValidationError):
        SuiteDefinition.model_validate(raw)
