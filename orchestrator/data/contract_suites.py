"""Data contracts as files: their schema, the built-in suites, and a sponsor's own contract file.

A contract says what a kind of data must look like; a clinician can read and amend it without
touching code. The built-in suites live in ``orchestrator/data/suites/<name>.yaml``; a sponsor
may bring a file of its own in the same format (spec ``data.expectations: my-contract.yaml``).
:mod:`orchestrator.data.contract_plan` fits a contract to a trial's frame, and
:mod:`orchestrator.data.contracts` runs it with Great Expectations. Nothing here imports pandas
or Great Expectations, so the spec loader can check a contract file cheaply.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from orchestrator.errors import DataError

SUITES_DIR = Path(__file__).with_name("suites")
LABEL = "{label}"
CASE_ID = "{case_id}"
COLUMN = "{column}"
FILE_SUFFIXES = (".yaml", ".yml")

Severity = Literal["blocking", "advisory"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ExpectationRule(_Frozen):
    """One expectation of a suite, as written in its file."""

    type: str = Field(
        pattern=r"^expect_[a-z0-9_]+$",
        description="GX Core expectation, e.g. expect_column_values_to_be_between.",
    )
    column: str | None = Field(
        default=None,
        description="Column it applies to; '{label}' for the label, '{case_id}' for the case id column.",
    )
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Arguments passed to the expectation.")
    severity: Severity = Field(description="blocking stops the trial; advisory is reported only.")
    description: str = Field(min_length=3, description="The rule in a clinician's words, shown in reports.")


class FeatureRule(_Frozen):
    """An expectation applied to every feature column (see :attr:`SuiteDefinition.each_feature`)."""

    type: str = Field(
        pattern=r"^expect_column_[a-z0-9_]+$",
        description="GX Core column expectation, e.g. expect_column_unique_value_count_to_be_between.",
    )
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Arguments passed to the expectation.")
    severity: Severity = Field(description="blocking stops the trial; advisory is reported only.")
    description: str = Field(
        min_length=3, description="The rule in words; '{column}' stands for the column's name."
    )


class SubgroupRule(_Frozen):
    """Minimum number of rows in each group of each sensitive attribute."""

    min_rows: int = Field(
        ge=1, description="Default minimum; a trial's workload.min_group_size overrides it."
    )
    severity: Severity = Field(description="Severity of a group under the minimum.")
    description: str = Field(min_length=3, description="Why the minimum matters.")


class SuiteDefinition(_Frozen):
    """A data contract for one kind of data."""

    schema_id: str = Field(
        alias="schema", pattern=r"^regsandbox/data-contract/v1$", description="Format of the contract file."
    )
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="Suite name, as named in trial specs.")
    description: str = Field(min_length=3, description="What kind of data the suite is for.")
    required_columns: list[str] = Field(description="Columns that must exist and hold no nulls.")
    optional_columns: list[str] = Field(
        default_factory=list, description="Columns checked only when present (their nulls are advisory)."
    )
    subgroups: SubgroupRule = Field(description="Minimum rows per group of each sensitive attribute.")
    expectations: list[ExpectationRule] = Field(description="The suite's expectations, in report order.")
    each_feature: list[FeatureRule] = Field(
        default_factory=list,
        description=(
            "Expectations applied to every feature column: each column that is neither the label, "
            "the case id nor a sensitive attribute (whatever the data calls them)."
        ),
    )

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


def is_contract_file(reference: str) -> bool:
    """Whether ``reference`` is the path of a contract file rather than a built-in suite's name."""
    return reference.lower().endswith(FILE_SUFFIXES)


def _read(path: Path, what: str) -> SuiteDefinition:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise DataError(f"{what} {path} is not valid YAML{where}") from exc
    if not isinstance(raw, dict):
        raise DataError(f"{what} {path}: a contract must be a mapping of fields (schema, name, ...)")
    try:
        return SuiteDefinition.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '<root>'}: "
            + ("unknown field" if error["type"] == "extra_forbidden" else error["msg"])
            for error in exc.errors()
        )
        raise DataError(f"{what} {path}: {problems}") from exc


@functools.cache
def load_suite(name: str) -> SuiteDefinition:
    """The named built-in suite; DataError naming the known suites when there is no such suite."""
    path = SUITES_DIR / f"{name}.yaml"
    if name not in known_suites():
        raise DataError(f"unknown data-contract suite {name!r}; known suites: {', '.join(known_suites())}")
    suite = _read(path, "data-contract suite")
    if suite.name != name:
        raise DataError(f"{path}: file declares suite {suite.name!r}, expected {name!r}")
    return suite


def load_contract_file(path: Path) -> SuiteDefinition:
    """A sponsor's contract file; DataError naming the file and every problem in it.

    Read afresh on every call (never cached): the file is the sponsor's and may be corrected
    between two trials of the same process.
    """
    return _read(path, "data-contract file")


def load_contract(reference: str) -> SuiteDefinition:
    """The contract a spec names in ``data.expectations``: a built-in suite or a contract file."""
    return load_contract_file(Path(reference)) if is_contract_file(reference) else load_suite(reference)
