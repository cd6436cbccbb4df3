"""Fitting a data contract to a trial's frame: which checks run, and which cannot (and why).

:func:`plan_checks` turns a contract (:mod:`orchestrator.data.contract_suites`), the trial's
label, case id column and sensitive attributes, and the columns actually present into the
concrete list of checks that :mod:`orchestrator.data.contracts` hands to Great Expectations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from orchestrator.data.contract_suites import CASE_ID, COLUMN, LABEL, Severity, SuiteDefinition

# A sensitive attribute with more groups than this is not categorical (an age in years, an id);
# counting rows per value would produce a check per value and say nothing useful.
MAX_GROUPS = 50
GENERATED_IDS = "the cases have no id column (data.id_column is null) and are numbered by the platform"


@dataclass(frozen=True)
class Check:
    """One concrete expectation to evaluate on one frame."""

    key: str
    type: str
    severity: Severity
    description: str
    column: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    group: str | None = None  # for subgroup-size checks: the group whose rows are counted
    group_value: Any = None


@dataclass(frozen=True)
class Plan:
    checks: list[Check]
    not_evaluated: list[str]


def _resolve(column: str, label: str, id_column: str | None) -> str | None:
    """The frame's column for a contract's column name; None for a case id the data lacks."""
    if column == LABEL:
        return label
    return id_column if column == CASE_ID else column


def _native(value: Any) -> Any:
    # Row conditions are serialised into the GX result; numpy scalars are not JSON.
    return value.item() if hasattr(value, "item") else value


def _feature_description(template: str, column: str) -> str:
    return template.replace(COLUMN, column) if COLUMN in template else f"{column}: {template}"


def plan_checks(
    suite: SuiteDefinition,
    frame: pd.DataFrame,
    label: str,
    sensitive_attributes: Sequence[str],
    min_group_rows: int | None = None,
    id_column: str | None = "case_id",
) -> Plan:
    """Fit ``suite`` to ``frame``: which checks run, and which cannot (and why).

    ``id_column`` is the data's case id column ('{case_id}' in the contract); None when the data
    has none and the platform numbers the cases, so rules on it are listed as not evaluated.
    """
    present = set(frame.columns)
    attributes = list(dict.fromkeys(sensitive_attributes))
    named = [_resolve(c, label, id_column) for c in suite.required_columns]
    required = list(dict.fromkeys([*(c for c in named if c is not None), *attributes]))
    optional = [
        c
        for c in (_resolve(c, label, id_column) for c in suite.optional_columns)
        if c is not None and c not in required
    ]
    checks: list[Check] = []
    not_evaluated: list[str] = []

    for column in required:
        checks.append(
            Check(
                f"present:{column}", "expect_column_to_exist", "blocking", f"required column {column}", column
            )
        )
    for column in required + optional:
        if column not in present:
            continue
        severity: Severity = "blocking" if column in required else "advisory"
        checks.append(
            Check(
                f"not-null:{column}",
                "expect_column_values_to_not_be_null",
                severity,
                f"{column} has no nulls",
                column,
            )
        )
    for index, rule in enumerate(suite.expectations):
        target = _resolve(rule.column, label, id_column) if rule.column is not None else None
        if rule.column is not None and target is None:
            not_evaluated.append(f"{rule.description}: not evaluated, {GENERATED_IDS}")
            continue
        if target is not None and target not in present:
            reason = "required column" if target in required else "optional column"
            not_evaluated.append(f"{rule.description}: not evaluated, {reason} {target} is absent")
            continue
        checks.append(
            Check(f"rule:{index}", rule.type, rule.severity, rule.description, target, dict(rule.kwargs))
        )

    # Features: every other column, whatever the data calls it (a sponsor's own columns included).
    others = {label, id_column, *attributes}
    features = [str(c) for c in frame.columns if c not in others]
    for index, feature_rule in enumerate(suite.each_feature):
        for column in features:
            checks.append(
                Check(
                    f"feature:{index}:{column}",
                    feature_rule.type,
                    feature_rule.severity,
                    _feature_description(feature_rule.description, column),
                    column,
                    dict(feature_rule.kwargs),
                )
            )

    minimum = min_group_rows if min_group_rows is not None else suite.subgroups.min_rows
    for attribute in attributes:
        if attribute not in present:
            not_evaluated.append(
                f"rows per {attribute} group: not evaluated, required column {attribute} is absent"
            )
            continue
        values = frame[attribute].dropna().unique().tolist()
        if len(values) > MAX_GROUPS:
            not_evaluated.append(
                f"rows per {attribute} group: not evaluated, {len(values)} distinct values (more than "
                f"{MAX_GROUPS}) is not a categorical attribute"
            )
            continue
        for value in sorted(values, key=str):
            checks.append(
                Check(
                    key=f"subgroup:{attribute}={value}",
                    type="expect_table_row_count_to_be_between",
                    severity=suite.subgroups.severity,
                    description=f"at least {minimum} rows with {attribute} = {value}",
                    column=attribute,
                    kwargs={"min_value": minimum},
                    group=str(value),
                    group_value=_native(value),
                )
            )
    return Plan(checks, not_evaluated)
