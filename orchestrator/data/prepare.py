"""The trial's data step: produce or take in the data, write it as used, check it, describe it.

:func:`prepare_trial_data` is the one entry point. Approved data is verified against the spec's
SHA-256 before anything reads it; synthetic data is generated from its seed. The frame is written
to ``data.csv`` in the work directory (read-only, with its digest), the data contract runs, and
the make-up is compared with the target population. A failed contract is returned, not raised:
the caller reads :attr:`PreparedData.blocking` and stops the trial with the failures as evidence.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.data.approved import READ_ONLY, ApprovedProvenance, file_sha256, intake_approved
from orchestrator.data.contract_suites import load_suite
from orchestrator.data.contracts import ContractResult, validate
from orchestrator.data.population_params import load_population_params
from orchestrator.data.representativeness import MakeupComparison, compare_makeup, default_target
from orchestrator.data.synthetic import generate
from orchestrator.errors import DataError
from orchestrator.spec import TrialSpec

DATA_FILE = "data.csv"


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
        frame, approved = intake_approved(data.approved, workdir, base_dir)
    else:
        synthetic = data.synthetic_or_default
        generator, seed = synthetic.generator, synthetic.seed
        frame = generate(synthetic.generator, synthetic.countries, synthetic.rows, synthetic.seed)

    load_suite(data.expectations)  # an unknown suite name fails here, before anything is written
    missing = [column for column in [data.label, *data.sensitive_attributes] if column not in frame.columns]
    if missing:
        raise DataError(f"trial data has no column(s) {', '.join(missing)} (label and sensitive attributes)")

    path = workdir / DATA_FILE
    digest = _write_read_only_csv(frame, path)
    contract = validate(
        frame, data.expectations, data.sensitive_attributes, data.label, spec.workload.min_group_size
    )

    if target is not None:
        basis = "declared target population"
        chosen = {attribute: dict(shares) for attribute, shares in target.items()}
    else:
        countries, basis = _target_countries(spec)
        chosen = default_target(countries) if countries else {}
        if not countries:
            basis = "none (no jurisdiction of the trial has population figures)"
    comparable = {attribute: shares for attribute, shares in chosen.items() if attribute in frame.columns}

    return PreparedData(
        frame=frame,
        source=data.source,
        path=path,
        sha256=digest,
        rows=len(frame),
        columns=[str(column) for column in frame.columns],
        label=data.label,
        sensitive_attributes=list(data.sensitive_attributes),
        generator=generator,
        seed=seed,
        approved=approved,
        contract=contract,
        target_basis=basis,
        representativeness=compare_makeup(frame, comparable),
    )
