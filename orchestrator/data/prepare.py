"""The trial's data step: produce or take in the data, write it as used, check it, describe it.

:func:`prepare_trial_data` is the one entry point. Approved data is verified against the spec's
SHA-256 before anything reads it; synthetic data is generated from its seed. The frame, its case
ids under ``case_id`` (see :func:`with_case_ids`), is written to ``data.csv`` in the work
directory (read-only, with its digest), the data contract runs on the data as the sponsor named
its columns, and the make-up is compared with the target population. A failed contract is
returned, not raised: the caller reads :attr:`PreparedData.blocking` and stops the trial with the
failures as evidence.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.data.approved import READ_ONLY, ApprovedProvenance, file_sha256, intake_approved
from orchestrator.data.contract_suites import load_contract
from orchestrator.data.contracts import ContractResult, validate
from orchestrator.data.population_params import load_population_params
from orchestrator.data.representativeness import MakeupComparison, compare_makeup, default_target
from orchestrator.data.synthetic import generate
from orchestrator.errors import DataError
from orchestrator.spec import TrialSpec

DATA_FILE = "data.csv"
# The gateway carries a batch's case ids in one header and the evidence collector joins each answer
# to its ground truth by them, under the name case_id. A sponsor's data names its identifier as it
# likes (data.id_column); data without one gets ids numbered in file order (row-1, row-2 ...), so
# a case named in the report can still be found in the sponsor's file.
CASE_ID = "case_id"
ROW_PREFIX = "row-"
EXAMPLES = 3


def with_case_ids(frame: pd.DataFrame, id_column: str | None) -> pd.DataFrame:
    """``frame`` as the trial uses it: its case ids, as text, in a ``case_id`` column.

    DataError when the named id column is absent, or when a ``case_id`` column exists besides
    it (the two would collide).
    """
    if id_column is None:
        if CASE_ID in frame.columns:
            raise DataError(
                f"trial data has a {CASE_ID} column but data.id_column is null; name it "
                f"(data.id_column: {CASE_ID}) or remove it"
            )
        ids = pd.Series([f"{ROW_PREFIX}{n}" for n in range(1, len(frame) + 1)], index=frame.index)
        return pd.concat([ids.rename(CASE_ID), frame], axis=1)
    if id_column not in frame.columns:
        raise DataError(
            f"trial data has no column {id_column!r} to identify its cases (data.id_column); name the "
            "column that does, or set data.id_column: null to number the cases in file order"
        )
    if id_column != CASE_ID and CASE_ID in frame.columns:
        raise DataError(
            f"trial data has both {id_column!r} (data.id_column) and a {CASE_ID} column; the trial "
            f"carries the ids of {id_column!r} as {CASE_ID}, so rename or remove the other one"
        )
    ids = frame[id_column]
    if not pd.api.types.is_string_dtype(ids):
        # Text, as the gateway carries them; a missing id stays missing, for check_case_ids to name.
        frame = frame.assign(**{id_column: ids.where(ids.isna(), ids.astype(str))})
    return frame.rename(columns={id_column: CASE_ID})


def check_case_ids(frame: pd.DataFrame, id_column: str | None) -> None:
    """DataError unless every case has an id, no two share one, and none holds a comma.

    The contract normally checks this too; here it holds whatever contract file the sponsor
    brings, because evidence joined on ambiguous ids would be wrong evidence.
    """
    ids = frame[CASE_ID]
    source = f"column {id_column!r}" if id_column else "the numbered cases"
    problems = []
    if missing := int(ids.isna().sum()):
        problems.append(f"{missing} case(s) without an id")
    duplicated = ids[ids.duplicated(keep=False) & ids.notna()].unique().tolist()
    if duplicated:
        problems.append(f"{len(duplicated)} id(s) used more than once (e.g. {_examples(duplicated)})")
    commas = ids[ids.astype(str).str.contains(",", regex=False) & ids.notna()].tolist()
    if commas:
        problems.append(f"{len(commas)} id(s) containing a comma (e.g. {_examples(commas)})")
    if problems:
        raise DataError(f"case ids in {source} cannot link answers to cases: {'; '.join(problems)}")


def _examples(values: list[object]) -> str:
    return ", ".join(str(v) for v in values[:EXAMPLES])


class PreparedData(BaseModel):
    """The trial's data as used, where it came from, and what the checks found."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    frame: pd.DataFrame = Field(exclude=True, repr=False, description="The data as used by the trial.")
    source: Literal["synthetic", "approved"] = Field(description="Synthetic population or approved dataset.")
    path: Path = Field(description="The data as used, written as CSV in the work directory (read-only).")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the file at ``path``.")
    rows: int = Field(ge=0, description="Number of cases.")
    columns: list[str] = Field(description="Columns, in order.")
    label: str = Field(description="Ground-truth column.")
    id_column: str | None = Field(
        description="Column the case ids came from; None when the platform numbered the cases."
    )
    sensitive_attributes: list[str] = Field(description="Columns by which subgroups are formed.")
    generator: str | None = Field(default=None, description="Synthetic generator, when synthetic.")
    seed: int | None = Field(default=None, description="Generator seed, when synthetic.")
    approved: ApprovedProvenance | None = Field(default=None, description="Intake record, when approved.")
    contract: ContractResult = Field(description="Outcome of the data contract.")
    target_basis: str = Field(description="What the target population of the make-up comparison is.")
    representativeness: list[MakeupComparison] = Field(
        description="Share of each group in the data against the target population."
    )

    @property
    def blocking(self) -> bool:
        """A blocking expectation failed: the trial must stop before provisioning."""
        return not self.contract.success

    def blocking_summary(self) -> str:
        """One line naming the suite and every blocking failure (for the error the caller raises)."""
        failures = "; ".join(failure.message for failure in self.contract.blocking_failures)
        return f"data contract {self.contract.suite} failed: {failures}" if failures else ""

    # The report_* helpers give the fields of the exit report's data models (orchestrator.reports),
    # so the report states exactly what this step found.

    def report_validation(self) -> dict[str, Any]:
        """Fields of ``DataValidation`` (suite, success, evaluated, failures, checks)."""
        return self.contract.report_fields()

    def report_provenance(self) -> dict[str, Any] | None:
        """Fields of ``ApprovedDataset`` for approved data; None for synthetic data."""
        if self.approved is None:
            return None
        return {
            "path": self.approved.spec_path,
            "sha256": self.approved.sha256,
            "approval_ref": self.approved.approval_ref,
            "rows": self.approved.rows,
            "format": self.approved.format,
        }

    def report_representativeness(self) -> list[dict[str, Any]]:
        """Fields of each ``RepresentativenessRow``."""
        return [row.model_dump() for row in self.representativeness]


def _target_countries(spec: TrialSpec) -> tuple[dict[str, float], str]:
    if spec.data.source == "synthetic":
        countries = dict(spec.data.synthetic_or_default.countries)
        return countries, "SEA population figures weighted by data.synthetic.countries"
    known = load_population_params().populations
    countries = {code: 1.0 for code in spec.jurisdictions if code in known}
    return countries, "SEA population figures of the trial's jurisdictions, equally weighted"


def _write_read_only_csv(frame: pd.DataFrame, path: Path) -> str:
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    frame.to_csv(partial, index=False)
    digest = file_sha256(partial)
    os.chmod(partial, READ_ONLY)
    os.replace(partial, path)
    return digest


def prepare_trial_data(
    spec: TrialSpec,
    workdir: Path,
    base_dir: Path | None = None,
    target: Mapping[str, Mapping[str, float]] | None = None,
) -> PreparedData:
    """Produce, record and check the trial's data.

    ``base_dir`` is where relative approved-data paths resolve (the spec file's directory; the
    current directory when None). ``target`` overrides the target make-up (attribute -> group ->
    share); by default it comes from the SEA population figures (see :func:`default_target`).
    Raises DataError when the data cannot be produced or verified or lacks the label or a
    sensitive attribute; contract failures are returned in ``contract``.
    """
    data = spec.data
    workdir.mkdir(parents=True, exist_ok=True)
    approved: ApprovedProvenance | None = None
    generator: str | None = None
    seed: int | None = None
    if data.source == "approved":
        if data.approved is None:  # the spec's validator makes this unreachable
            raise DataError("data source is approved but the spec has no 'approved' section")
        text = (CASE_ID, data.id_column) if data.id_column else (CASE_ID,)
        frame, approved = intake_approved(data.approved, workdir, base_dir, text_columns=text)
    else:
        synthetic = data.synthetic_or_default
        generator, seed = synthetic.generator, synthetic.seed
        frame = generate(synthetic.generator, synthetic.countries, synthetic.rows, synthetic.seed)

    load_contract(data.contract)  # an unknown suite or a broken file fails here, before anything is written
    missing = [column for column in [data.label, *data.sensitive_attributes] if column not in frame.columns]
    if missing:
        raise DataError(f"trial data has no column(s) {', '.join(missing)} (label and sensitive attributes)")
    used = with_case_ids(frame, data.id_column)

    path = workdir / DATA_FILE
    digest = _write_read_only_csv(used, path)
    # The contract reads the columns by the names the sponsor gave them (its contract file uses them).
    contract = validate(
        frame,
        data.contract,
        data.sensitive_attributes,
        data.label,
        spec.workload.min_group_size,
        data.id_column,
    )
    if contract.success:
        # Whatever the contract checked, the evidence is joined on these ids.
        check_case_ids(used, data.id_column)

    if target is not None:
        basis = "declared target population"
        chosen = {attribute: dict(shares) for attribute, shares in target.items()}
    else:
        countries, basis = _target_countries(spec)
        chosen = default_target(countries) if countries else {}
        if not countries:
            basis = "none (no jurisdiction of the trial has population figures)"
    comparable = {attribute: shares for attribute, shares in chosen.items() if attribute in used.columns}

    return PreparedData(
        frame=used,
        source=data.source,
        path=path,
        sha256=digest,
        rows=len(used),
        columns=[str(column) for column in used.columns],
        label=data.label,
        id_column=data.id_column,
        sensitive_attributes=list(data.sensitive_attributes),
        generator=generator,
        seed=seed,
        approved=approved,
        contract=contract,
        target_basis=basis,
        representativeness=compare_makeup(used, comparable),
    )
