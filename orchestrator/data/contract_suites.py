"""Data-contract suites: their files, their schema, and how one is fitted to a trial's frame.

A suite lives in ``orchestrator/data/suites/<name>.yaml`` and says what a kind of data must look
like; a clinician can read and amend it without touching code. :func:`plan_checks` turns a suite,
the trial's label and sensitive attributes, and the columns actually present into the concrete
list of checks that :mod:`orchestrator.data.contracts` hands to Great Expectations. Nothing here
imports Great Expectations, so loading and planning stay cheap.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from orchestrator.errors import DataError

SUITES_DIR = Path(__file__).with_name("suites")
LABEL = "{label}"
# A sensitive attribute with more groups than this is not categorical (an age in years, an id);
# counting rows per value would produce a check per value and say nothing useful.
MAX_GROUPS = 50

Severity = Literal["blocking", "advisory"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ExpectationRule(_Frozen):
    """One expectation of a suite, as written in its file."""

    type: str = Field(
        pattern=r"^expect_[a-z0-9_]+$",
        description="GX Core expectation, e.g. expect_column_values_to_be_between.",
    )
    column: str | None = Field(default=None, description="Column it applies to; '{label}' for the label.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Arguments passed to the expectation.")
    severity: Severity = Field(description="blocking stops the trial; advisory is reported only.")
    description: str = Field(min_length=3, description="The rule in a clinician's words, shown in reports.")


class SubgroupRule(_Frozen):
    """Minimum number of rows in each group of each sensitive attribute."""

    min_rows: int = Field(
        ge=1, description="Default minimum; a trial's workload.min_group_size overrides it."
    )
    severity: Severity = Field(description="Severity of a group under the minimum.")
    description: str = Field(min_length=3, description="Why the minimum matters.")


class SuiteDefinition(_Frozen):
    """A data contract for one kind of data."""

    schema_id: str = Field(alias="schema", pattern=r"^regsandbox/data-contract/v1$")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="Suite name, as named in trial specs.")
    description: str = Field(min_length=3, description="What kind of data the suite is for.")
    required_columns: list[str] = Field(description="Columns that must exist and hold no nulls.")
    optional_columns: list[str] = Field(
        default_factory=list, description="Columns checked only when present (their nulls are advisory)."
    )
    subgroups: SubgroupRule = Field(description="Minimum rows per group of each sensitive attribute.")
    expectations: list[ExpectationRule] = Field(description="The suite's expectations, in report order.")

    @model_validator(mode="after")
    def _columns_declared(self) -> SuiteDefinition:
        declared = {*self.required_columns, *self.optional_columns}
        both = set(self.required_columns) & set(self.optional_columns)
        if both:
            raise ValueError(f"columns both required and optional: {', '.join(sorted(both))}")
        undeclared = sorted({rule.column for rule in self.expectations if rule.column is not None} - declared)
        if undeclared:
            raise ValueError(f"expectations name undeclared columns: {', '.join(undeclared)}")
        return self


def known_suites() -> tuple[str, ...]:
    return tuple(sorted(path.stem for path in SUITES_DIR.glob("*.yaml")))


@functools.cache
def load_suite(name: str) -> SuiteDefinition:
    """The named suite; DataError naming the known suites when there is no such suite."""
    path = SUITES_DIR / f"{name}.yaml"
    if name not in known_suites():
        raise DataError(f"unknown data-contract suite {name!r}; known suites: {', '.join(known_suites())}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        suite = SuiteDefinition.model_validate(raw)
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"cannot read data-contract suite {path}: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise DataError(f"{path}: {problems}") from exc
    if suite.name != name:
        raise DataError(f"{path}: file declares suite {suite.name!r}, expected {name!r}")
    return suite


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


def _resolve(column: str, label: str) -> str:
    return label if column == LABEL else column


def _native(value: Any) -> Any:
    # Row conditions are serialised into the GX result; numpy scalars are not JSON.
    return value.item() if hasattr(value, "item") else value


def plan_checks(
    suite: SuiteDefinition,
    frame: pd.DataFrame,
    label: str,
    sensitive_attributes: Sequence[str],
    min_group_rows: int | None = None,
) -> Plan:
    """Fit ``suite`` to ``frame``: which checks run, and which cannot (and why)."""
    present = set(frame.columns)
    attributes = list(dict.fromkeys(sensitive_attributes))
    required = list(dict.fromkeys([*(_resolve(c, label) for c in suite.required_columns), *attributes]))
    optional = [c for c in (_resolve(c, label) for c in suite.optional_columns) if c not in required]
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
        target = _resolve(rule.column, label) if rule.column is not None else None
        if target is not None and target not in present:
            reason = "required column" if target in required else "optional column"
            not_evaluated.append(f"{rule.description}: not evaluated, {reason} {target} is absent")
            continue
        checks.append(
            Check(f"rule:{index}", rule.type, rule.severity, rule.description, target, dict(rule.kwargs))
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
