"""The reference population drift is measured against, or the reason drift is not assessed.

A model is only as good as the overlap between the population it was developed on and the one
it meets. The spec names that population in ``data.reference``: generator settings (the sample
candidate's own training population) or an approved dataset of the sponsor's, taken in like
the trial data (SHA-256 first, read-only copy). Drift is compared on the model's inputs that
the reference holds too; with no reference, or one sharing no input with the model, drift is
not assessed: comparing the trial with an unrelated population would be evidence of nothing.

:func:`load_reference` is the one entry point; the trial step hands the result's
:meth:`Reference.drift_monitor` to the workload and its :meth:`Reference.summary` to the audit
trail.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.data.approved import ApprovedProvenance, intake_approved
from orchestrator.data.synthetic import generate
from orchestrator.spec import ApprovedData, TrialSpec

if TYPE_CHECKING:
    from monitors.drift import DriftMonitor

REFERENCE_FOLDER = "reference"
NOT_DECLARED = (
    "no reference population is declared (data.reference), so the trial data is not compared with "
    "any population"
)


class Reference(BaseModel):
    """The population drift is measured against, as taken in; or why there is none."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    frame: pd.DataFrame | None = Field(
        default=None, exclude=True, repr=False, description="Reference rows; None when drift is not assessed."
    )
    kind: Literal["generator", "approved", "none"] = Field(
        description="Generated population, approved dataset, or no reference declared."
    )
    description: str = Field(description="What the reference is, as the report names it.")
    features: list[str] = Field(
        default_factory=list, description="Model inputs compared: those the reference holds too."
    )
    not_compared: list[str] = Field(
        default_factory=list, description="Model inputs the reference lacks, left out of the comparison."
    )
    reason: str | None = Field(default=None, description="Why drift is not assessed; None when it is.")
    approved: ApprovedProvenance | None = Field(
        default=None, description="Intake record, when the reference is an approved dataset."
    )

    @property
    def assessed(self) -> bool:
        return self.frame is not None

    def drift_monitor(self) -> DriftMonitor:
        """The drift monitor over this reference; one that reports "not assessed" without one."""
        from monitors.drift import DriftMonitor

        if self.frame is None:
            return DriftMonitor(None, [], source=self.description, reason=self.reason)
        return DriftMonitor(self.frame, self.features, source=self._source())

    def _source(self) -> str:
        if not self.not_compared:
            return self.description
        return f"{self.description}; inputs it lacks, not compared: {', '.join(self.not_compared)}"

    def summary(self) -> dict[str, Any]:
        """What the audit event and the MLflow run record about the reference."""
        found: dict[str, Any] = {
            "reference": self.kind,
            "description": self.description,
            "assessed": self.assessed,
            "features": self.features,
        }
        if self.not_compared:
            found["not_compared"] = self.not_compared
        if self.reason:
            found["reason"] = self.reason
        if self.approved is not None:
            found["sha256"] = self.approved.sha256
        return found


def load_reference(
    spec: TrialSpec, workdir: Path, feature_columns: Sequence[str], base_dir: Path | None = None
) -> Reference:
    """The reference population of ``spec`` compared on ``feature_columns`` (the model's inputs).

    An approved reference is verified against its SHA-256 and copied read-only under
    ``workdir/reference/`` (relative paths resolve against ``base_dir``, else the current
    directory; :func:`orchestrator.spec.load_spec` has made them absolute already). DataError
    when that dataset is missing, altered or unreadable. No reference, or one that holds none
    of ``feature_columns``, gives a Reference without a frame and with the reason.
    """
    declared = spec.data.reference
    if declared is None:
        return Reference(kind="none", description="none declared", reason=NOT_DECLARED)
    provenance: ApprovedProvenance | None = None
    kind: Literal["generator", "approved"]
    if isinstance(declared, ApprovedData):
        frame, provenance = intake_approved(declared, workdir, base_dir, folder=REFERENCE_FOLDER)
        kind = "approved"
        description = (
            f"approved dataset {provenance.source_path} (sha256 {provenance.sha256}, approval "
            f"{provenance.approval_ref}), {provenance.rows:,} rows"
        )
    else:
        frame = generate(declared.generator, {"REF": 1.0}, declared.rows, declared.seed)
        kind = "generator"
        description = f"{declared.generator} generator, {declared.rows:,} rows, seed {declared.seed}"
    wanted = list(dict.fromkeys(feature_columns))
    features = [column for column in wanted if column in frame.columns]
    not_compared = [column for column in wanted if column not in frame.columns]
    if not features:
        reason = (
            f"the reference ({description}) holds none of the model's inputs "
            f"({', '.join(wanted) or 'none known'}), so it is not comparable with the trial data"
        )
        return Reference(
            kind=kind, description=description, not_compared=not_compared, reason=reason, approved=provenance
        )
    return Reference(
        frame=frame,
        kind=kind,
        description=description,
        features=features,
        not_compared=not_compared,
        approved=provenance,
    )
