"""Data contracts: Great Expectations (GX Core 1.x) suites that gate a trial on its data.

:func:`validate` runs a contract (a built-in suite or a sponsor's contract file, see
:mod:`orchestrator.data.contract_suites`) on a frame and returns
a :class:`ContractResult`: whether the trial may go on (no *blocking* failure), one line per
failure with its counts, and GX's own result as JSON for the trial's MLflow run. Every check,
the per-subgroup row counts included, is a GX expectation evaluated by GX on the frame itself:
a subgroup's size is ``expect_table_row_count_to_be_between`` restricted by a row condition to
that group. Great Expectations is imported inside the function that runs it (2-3 s to import).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.data.approved import file_sha256
from orchestrator.data.contract_plan import Check, plan_checks
from orchestrator.data.contract_suites import Severity, is_contract_file, load_contract
from orchestrator.errors import DataError

GX_SEVERITY: dict[Severity, str] = {"blocking": "critical", "advisory": "warning"}
META_KEY = "regsandbox_check"
MAX_EXCEPTION_CHARS = 200
EXAMPLES = 3


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ContractFailure(_Frozen):
    """One expectation that did not hold."""

    expectation: str = Field(description="GX expectation type, e.g. expect_column_values_to_be_between.")
    column: str | None = Field(description="Column checked (the attribute, for a subgroup check).")
    group: str | None = Field(default=None, description="Group of a subgroup-size check, e.g. VN.")
    severity: Severity = Field(description="blocking stops the trial; advisory is reported only.")
    observed: int | float | str | None = Field(default=None, description="Observed value, for aggregates.")
    unexpected_count: int | None = Field(default=None, description="Rows that broke a per-row rule.")
    element_count: int | None = Field(default=None, description="Rows the per-row rule looked at.")
    message: str = Field(description="One line for the report.")


class ContractOutcome(_Frozen):
    """One expectation and whether it held (passes included: the report lists every check)."""

    expectation: str = Field(description="GX expectation type.")
    column: str | None = Field(description="Column checked (the attribute, for a subgroup check).")
    group: str | None = Field(default=None, description="Group of a subgroup-size check.")
    severity: Severity = Field(description="blocking or advisory.")
    success: bool = Field(description="Whether the expectation held.")
    detail: str = Field(description="The rule and what was observed, or why it failed.")


class ContractResult(_Frozen):
    """Outcome of a data contract on one frame."""

    suite: str = Field(description="Suite applied, e.g. clinical-tabular.")
    source: str | None = Field(
        default=None, description="For a contract file: its path and SHA-256; None for a built-in suite."
    )
    success: bool = Field(description="No blocking expectation failed: the trial may go on.")
    evaluated: int = Field(ge=0, description="Expectations GX evaluated.")
    blocking_failures: list[ContractFailure] = Field(description="Failures that stop the trial.")
    advisory_failures: list[ContractFailure] = Field(description="Failures reported without stopping it.")
    checks: list[ContractOutcome] = Field(description="Every evaluated expectation, in suite order.")
    not_evaluated: list[str] = Field(
        default_factory=list,
        description="Rules skipped, each with the reason (e.g. an optional column absent).",
    )
    gx_result: dict[str, Any] = Field(description="GX's validation result as JSON (for the MLflow run).")

    @property
    def all_passed(self) -> bool:
        """Every expectation held, advisory ones included."""
        return not self.blocking_failures and not self.advisory_failures

    def failure_lines(self) -> list[str]:
        return [
            f"[{failure.severity}] {failure.message}"
            for failure in (*self.blocking_failures, *self.advisory_failures)
        ]

    def report_fields(self) -> dict[str, Any]:
        """Fields of the exit report's ``DataValidation`` (whose ``success`` means every expectation held)."""
        return {
            "suite": self.suite,
            "source": self.source,
            "success": self.all_passed,
            "evaluated": self.evaluated,
            "failures": self.failure_lines(),
            "checks": [
                {"name": c.expectation, "column": c.column, "success": c.success, "detail": c.detail}
                for c in self.checks
            ],
        }


def validate(
    frame: pd.DataFrame,
    contract: str,
    sensitive_attributes: Sequence[str],
    label: str,
    min_group_rows: int | None = None,
    id_column: str | None = "case_id",
) -> ContractResult:
    """Run ``contract`` (a built-in suite's name or a contract file's path) on ``frame``.

    Failures are returned, never raised. ``min_group_rows`` overrides the suite's minimum rows
    per sensitive-attribute group (a trial passes its ``workload.min_group_size``, so the
    contract and the monitors agree); ``id_column`` is the data's case id column (None when the
    platform numbers the cases). DataError only when the suite is unknown, the contract file
    unreadable or malformed, or GX itself cannot run.
    """
    suite = load_contract(contract)
    source = f"{contract} (sha256 {file_sha256(Path(contract))})" if is_contract_file(contract) else None
    plan = plan_checks(suite, frame, label, sensitive_attributes, min_group_rows, id_column)
    raw = _run(suite.name, plan.checks, frame)

    items = {
        ((item.get("expectation_config") or {}).get("meta") or {}).get(META_KEY): item
        for item in raw.get("results", [])
    }
    outcomes: list[ContractOutcome] = []
    failures: list[ContractFailure] = []
    for check in plan.checks:
        # A check GX returned no result for counts as failed: the contract fails closed.
        item = items.get(check.key, {"success": False})
        failure = None if item.get("success") else _failure(check, item)
        if failure is not None:
            failures.append(failure)
        outcomes.append(
            ContractOutcome(
                expectation=check.type,
                column=check.column,
                group=check.group,
                severity=check.severity,
                success=failure is None,
                detail=failure.message if failure is not None else _passed_detail(check, item),
            )
        )
    blocking = [failure for failure in failures if failure.severity == "blocking"]
    return ContractResult(
        suite=suite.name,
        source=source,
        success=not blocking,
        evaluated=int(raw.get("statistics", {}).get("evaluated_expectations", 0)),
        blocking_failures=blocking,
        advisory_failures=[failure for failure in failures if failure.severity == "advisory"],
        checks=outcomes,
        not_evaluated=plan.not_evaluated,
        gx_result=raw,
    )


def _run(suite_name: str, checks: list[Check], frame: pd.DataFrame) -> dict[str, Any]:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    expectations = [_expectation(suite_name, check) for check in checks]
    suite = context.suites.add(gx.ExpectationSuite(name=suite_name, expectations=expectations))
    batch_definition = (
        context.data_sources.add_pandas("trial-data")
        .add_dataframe_asset("trial")
        .add_batch_definition_whole_dataframe("whole-frame")
    )
    try:
        result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite)
    except Exception as exc:  # GX reports per-expectation problems in the result; this is GX itself failing
        raise DataError(f"data contract {suite_name!r} could not run: {exc}") from exc
    return dict(result.to_json_dict())


def _expectation(suite_name: str, check: Check) -> Any:
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    classes = {name.lower(): name for name in dir(gxe) if name.startswith("Expect")}
    class_name = classes.get(check.type.replace("_", ""))
    if class_name is None:
        raise DataError(f"data contract {suite_name!r}: GX has no expectation {check.type!r}")
    kwargs = dict(check.kwargs)
    if check.group is not None and check.column is not None:
        kwargs["row_condition"] = Column(check.column) == check.group_value
    elif check.column is not None:
        kwargs["column"] = check.column
    try:
        return getattr(gxe, class_name)(
            **kwargs,
            severity=GX_SEVERITY[check.severity],
            description=check.description,
            meta={META_KEY: check.key},
        )
    except (TypeError, ValueError) as exc:
        raise DataError(f"data contract {suite_name!r}: bad arguments for {check.type}: {exc}") from exc


def _exception_message(info: dict[str, Any]) -> str | None:
    # GX nests exception details per metric when a metric failed, flat when the expectation did.
    entries = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    for entry in entries:
        if entry.get("raised_exception"):
            return str(entry.get("exception_message") or "unknown error")[:MAX_EXCEPTION_CHARS]
    return None


def _observed(value: Any) -> int | float | str | None:
    if value is None or isinstance(value, bool):
        return None if value is None else str(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return round(value, 6)
    return str(value)


def _passed_detail(check: Check, item: dict[str, Any]) -> str:
    result = item.get("result") or {}
    observed = _observed(result.get("observed_value"))
    if result.get("unexpected_count") is not None and result.get("element_count") is not None:
        return f"{check.description}: {result['unexpected_count']:,} of {result['element_count']:,} rows fail"
    if observed is not None:
        return f"{check.description}: observed {observed}"
    return check.description


def _failure(check: Check, item: dict[str, Any]) -> ContractFailure:
    result = item.get("result") or {}
    observed = _observed(result.get("observed_value"))
    unexpected = result.get("unexpected_count")
    elements = result.get("element_count")
    exception = _exception_message(item.get("exception_info") or {})
    if exception is not None:
        message = f"{check.description}: could not be evaluated ({exception})"
    elif check.type == "expect_column_to_exist":
        message = f"required column {check.column} is missing"
    elif check.group is not None:
        message = (
            f"{check.column} = {check.group}: {observed} rows, fewer than {check.kwargs.get('min_value')}"
        )
    elif unexpected is not None and elements is not None:
        examples = [str(v) for v in result.get("partial_unexpected_list") or [] if v is not None][:EXAMPLES]
        message = f"{check.description}: {unexpected:,} of {elements:,} rows fail"
        message += f" (e.g. {', '.join(examples)})" if examples else ""
    elif observed is not None:
        message = f"{check.description}: observed {observed}"
    else:
        message = f"{check.description}: failed"
    return ContractFailure(
        expectation=check.type,
        column=check.column,
        group=check.group,
        severity=check.severity,
        observed=observed,
        unexpected_count=int(unexpected) if unexpected is not None else None,
        element_count=int(elements) if elements is not None else None,
        message=message,
    )
