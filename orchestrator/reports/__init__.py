"""Exit reports: the canonical signed JSON, its schema, its HTML rendering and verification."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    "DataSection",
    "DataValidation",
    "EndpointSection",
    "ErrorSection",
    "ExitReport",
    "IsolationControl",
    "IsolationSection",
    "MakeupRow",
    "MetricsSection",
    "MlflowSection",
    "ModelSection",
    "OperationsSection",
    "ReportIntegrityError",
    "ReportPaths",
    "ReproducibilitySection",
    "TeardownSection",
    "TrialSection",
    "canonical_json",
    "export_public_key",
    "export_schema",
    "load_or_create_key",
    "load_report",
    "parse_report",
    "public_key_fingerprint",
    "render_html",
    "sign",
    "verification_problem",
    "verify",
    "write_report",
]
