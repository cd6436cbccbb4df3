"""Exit reports: the canonical signed JSON, its schema, HTML and PDF renderings, attestation,
verification and comparison."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator.reports.card import model_card_from_registry
from orchestrator.reports.diff import ReportDiff, diff_reports
from orchestrator.reports.envelope import envelope_problem, verify_envelope
from orchestrator.reports.html import render_html
from orchestrator.reports.model import (
    SCHEMA_ID,
    DataSection,
    DataValidation,
    EndpointSection,
    ErrorSection,
    ExitReport,
    IsolationControl,
    IsolationSection,
    MakeupRow,
    MetricsSection,
    MlflowSection,
    ModelSection,
    OperationsSection,
    ReportIntegrityError,
    ReproducibilitySection,
    TeardownSection,
    TrialSection,
    canonical_json,
    load_report,
    parse_report,
)
from orchestrator.reports.sections import (
    ApprovedDataset,
    ContractCheck,
    FailureCase,
    Incident,
    ModelCard,
    MonitoringItem,
    PlannedChange,
    PostMarketSection,
    RepresentativenessRow,
)
from orchestrator.reports.signing import (
    export_public_key,
    load_or_create_key,
    public_key_fingerprint,
    sign,
    verification_problem,
    verify,
)
from orchestrator.reports.writer import ReportPaths, write_report

if TYPE_CHECKING:
    from orchestrator.reports.schema import export_schema


def __getattr__(name: str) -> Any:
    # Imported on demand so that ``python -m orchestrator.reports.schema`` runs the module once.
    if name == "export_schema":
        from orchestrator.reports.schema import export_schema

        return export_schema
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "SCHEMA_ID",
    "ApprovedDataset",
    "ContractCheck",
    "DataSection",
    "DataValidation",
    "EndpointSection",
    "ErrorSection",
    "ExitReport",
    "FailureCase",
    "Incident",
    "IsolationControl",
    "IsolationSection",
    "MakeupRow",
    "MetricsSection",
    "MlflowSection",
    "ModelCard",
    "ModelSection",
    "MonitoringItem",
    "OperationsSection",
    "PlannedChange",
    "PostMarketSection",
    "ReportDiff",
    "ReportIntegrityError",
    "ReportPaths",
    "RepresentativenessRow",
    "ReproducibilitySection",
    "TeardownSection",
    "TrialSection",
    "canonical_json",
    "diff_reports",
    "envelope_problem",
    "export_public_key",
    "export_schema",
    "load_or_create_key",
    "load_report",
    "model_card_from_registry",
    "parse_report",
    "public_key_fingerprint",
    "render_html",
    "sign",
    "verification_problem",
    "verify",
    "verify_envelope",
    "write_report",
]
