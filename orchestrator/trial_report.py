"""Assemble a trial's exit report from its records, on every path (completed, failed, cancelled).

Only the frozen step records and the trial's event journal are read: what the report says is
what the steps established, and nothing is recomputed here.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
from typing import TYPE_CHECKING

from orchestrator.model_artifacts import registered_version
from orchestrator.reports import (
    DataSection,
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
    ReproducibilitySection,
    TeardownSection,
    TrialSection,
)
from orchestrator.reports.card import model_card_from_registry
from orchestrator.reports.model import ModelCard
from orchestrator.reports.sections import Incident
from orchestrator.trial_records import DataReady, TrialRecords, status_of

if TYPE_CHECKING:
    from orchestrator.evaluation.packs import PackData
    from orchestrator.trial import Trial

ISOLATION_NOTES = {
    "docker": [
        "Probes ran inside the provisioned sandbox before deployment, with a canary listening on every "
        "host address; the remaining controls are read back from the Docker engine after the model "
        "server started, not taken from the request.",
    ],
    "process": [
        "PROCESS BACKEND: the model ran as a local process with resource limits only. It had no network "
        "or filesystem isolation; this is not a container trial.",
    ],
}


def _makeup(data: DataReady, attributes: list[str]) -> list[MakeupRow]:
    if data.prepared is None:
        return []
    frame = data.prepared.frame
    total = len(frame)
    rows = []
    for attribute in attributes:
        counts = frame[attribute].astype(str).value_counts().sort_index()
        rows += [
            MakeupRow(attribute=attribute, group=str(g), n=int(n), share=float(n) / total)
            for g, n in counts.items()
        ]
    return rows


def _data(trial: Trial, records: TrialRecords) -> DataSection | None:
    """Provenance, the data contract's findings and the make-up, as the data step recorded them."""
    from orchestrator.reports.model import ApprovedDataset, DataValidation, RepresentativenessRow

    if records.data is None:
        return None
    if records.data.packs is not None:
        return _packs(records.data.packs)
    prepared = records.data.prepared
    if prepared is None:
        return None
    provenance = prepared.report_provenance()
    approved = trial.spec.data.approved
    return DataSection(
        source=prepared.source,
        generator=prepared.generator,
        rows=prepared.rows,
        seed=prepared.seed,
        digest=prepared.sha256,
        label=prepared.label,
        sensitive_attributes=prepared.sensitive_attributes,
        makeup=_makeup(records.data, trial.spec.data.sensitive_attributes),
        approval_ref=approved.approval_ref if approved else None,
        validation=DataValidation(**prepared.report_validation()),
        provenance=ApprovedDataset(**provenance) if provenance else None,
        representativeness=[RepresentativenessRow(**row) for row in prepared.report_representativeness()],
    )


def _packs(data: PackData) -> DataSection:
    """The packs a chat trial ran; the make-up is the cases per language and per pack."""
    from orchestrator.reports.sections import EvaluationPack

    total = data.cases or 1
    makeup = []
    for attribute, key in (("language", lambda i, p: i.language), ("pack", lambda i, p: p.manifest.id)):
        counts: dict[str, int] = {}
        for pack in data.packs:
            for item in pack.items:
                group = key(item, pack)
                counts[group] = counts.get(group, 0) + 1
        makeup += [
            MakeupRow(attribute=attribute, group=g, n=n, share=n / total) for g, n in sorted(counts.items())
        ]
    return DataSection(
        source="packs",
        rows=data.cases,
        digest=data.sha256,
        label="expected answer per case (each pack's grader)",
        sensitive_attributes=["language", "counterfactual attribute"],
        makeup=makeup,
        packs=[
            EvaluationPack(
                id=p.manifest.id,
                version=p.manifest.version,
                title=p.manifest.title,
                measures=p.manifest.measures,
                grader=p.manifest.grader,
                exact=p.manifest.exact,
                languages=sorted({i.language for i in p.items}),
                cases=len(p.items),
                licence=p.manifest.licence,
                notice=p.manifest.sample_notice,
                sha256=p.sha256,
            )
            for p in data.packs
        ],
    )


def _model_card(trial: Trial, records: TrialRecords) -> ModelCard | None:
    """The CHAI-style model card, from what the developer declared in the MLflow registry."""
    model = records.data.model if records.data else None
    # The version fetched and deployed, not whatever the alias points at by report time.
    found = registered_version(model.resolved) if model else None
    client = trial.live.client
    if found is None or client is None:
        return None
    name, number = found
    try:
        version = client.get_model_version(name, number)
        registered = client.get_registered_model(name)
    except Exception:  # noqa: BLE001 - a missing card is reported as missing, never a failed trial
        return None
    return model_card_from_registry(
        name=name,
        version=str(version.version),
        source=f"models:/{name}/{version.version}",
        model_description=registered.description,
        version_description=version.description,
        model_tags=dict(registered.tags),
        version_tags=dict(version.tags),
        created=dt.datetime.fromtimestamp(version.creation_timestamp / 1000, dt.UTC),
    )


def _incidents(trial: Trial) -> list[Incident]:
    """Isolation events seen while the sandbox ran."""
    found = []
    for event in trial.events:
        if event.kind != "isolation_event":
            continue
        detail = {k: v for k, v in event.detail.items() if k != "event"}
        description = str(event.detail.get("event", "event"))
        if detail:
            description += ": " + ", ".join(f"{k}={v}" for k, v in detail.items() if k != "processes")
        found.append(Incident(kind="isolation", description=description[:500], at=event.at))
    return found


def _resources(trial: Trial, records: TrialRecords) -> dict[str, float] | None:
    peaks = records.teardown.resources if records.teardown else None
    if peaks is None:
        return None
    return {
        "peak_memory_mb": float(peaks.get("resources/peak_memory_mb") or 0.0),
        "memory_limit_mb": float(trial.spec.resources.memory_mb),
        "peak_pids": float(peaks.get("resources/peak_pids") or 0.0),
        "oom_events": float(peaks.get("resources/oom_events") or 0.0),
    }


def _seeds(trial: Trial) -> dict[str, int]:
    seeds = {}
    if trial.spec.data.source == "synthetic":
        seeds["data"] = trial.spec.data.synthetic_or_default.seed
    return seeds


def _digests(records: TrialRecords) -> dict[str, str]:
    digests: dict[str, str] = {}
    if records.data is not None:
        if records.data.sha256 is not None:
            digests["data"] = f"sha256:{records.data.sha256}"
        if records.data.model is not None:
            digests["model"] = f"sha256:{records.data.model.digest}"
    if records.deployment and records.deployment.endpoint.image_digest:
        digests["image"] = records.deployment.endpoint.image_digest
    # The profiles loaded at admission are the ones applied: the same digests, however it ended.
    for profile in records.admission.profiles.values() if records.admission else ():
        digests[f"profile:{profile.id}@{profile.version}"] = profile.digest
    return digests


def _isolation(trial: Trial, records: TrialRecords) -> IsolationSection | None:
    """What was verified: the probes run inside the sandbox, then the engine's own read-back."""
    backend = trial.live.backend
    if records.provisioned is None or backend is None:
        return None
    attestation = records.attested.attestation if records.attested else None
    read_back = records.deployment.controls if records.deployment else []
    controls = []
    if attestation is not None:
        controls += [
            IsolationControl(
                control=f"probe: {p.probe}",
                applied=p.passed,
                detail=p.detail if p.required else f"not claimed by this backend; {p.detail}",
            )
            for p in attestation.probes
        ]
    controls += [IsolationControl(control=c.control, applied=c.applied, detail=c.detail) for c in read_back]
    notes = list(ISOLATION_NOTES.get(backend.name, []))
    if attestation is None:
        notes.insert(0, "The isolation probes did not run: nothing was verified from inside the sandbox.")
    elif not attestation.passed:
        failed = ", ".join(p.probe for p in attestation.failures)
        notes.insert(
            0, f"Isolation probes FAILED ({failed}); the trial stopped before any model or data entered."
        )
    if attestation is not None and attestation.passed and not read_back:
        notes.insert(0, "The model was never deployed: no control was read back from the engine.")
    # Verified means both kinds of evidence exist and hold: probes from inside, read-back from outside.
    verified = bool(attestation and attestation.passed and read_back) and all(c.applied for c in read_back)
    level = attestation.verified_level if attestation else f"{backend.isolation_level} (NOT verified)"
    if not verified and "NOT verified" not in level:
        level += " (NOT verified)"
    return IsolationSection(
        backend=backend.name, level=level, controls=controls, verified=verified, notes=notes
    )


def versions() -> dict[str, str]:
    import platform

    found = {"python": platform.python_version()}
    for dist in ("regsandbox", "prefect", "mlflow", "docker", "scikit-learn", "pandas", "numpy", "pydantic"):
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def _model(trial: Trial, records: TrialRecords) -> ModelSection | None:
    model = records.data.model if records.data else None
    if model is None:
        return None
    endpoint = records.deployment.endpoint if records.deployment else None
    return ModelSection(
        uri=model.uri,
        resolved=model.resolved,
        digest=model.digest,
        template=trial.spec.model.template,
        image=endpoint.image if endpoint else None,
        image_digest=endpoint.image_digest if endpoint else None,
        flavors=model.flavors,
    )


def _metrics(records: TrialRecords) -> MetricsSection | None:
    if records.observation is None:
        return None
    values = dict(records.observation.values)
    if records.teardown and records.teardown.refused_connections is not None:
        values["isolation/refused_connections"] = records.teardown.refused_connections
    return MetricsSection(values=values, intervals=records.observation.intervals)


def _operations(trial: Trial, records: TrialRecords) -> OperationsSection | None:
    counts = records.teardown.traffic if records.teardown else {}
    if not counts:
        return None
    return OperationsSection(
        requests=counts.get("developer", 0) + counts.get("evaluation", 0),
        errors=counts.get("errors", 0),
        developer_requests=counts.get("developer", 0),
        resources=_resources(trial, records),
        incidents=_incidents(trial) if records.deployment else None,
    )


def build_report(trial: Trial, records: TrialRecords) -> ExitReport:
    spec = trial.spec
    run = records.admission.mlflow if records.admission else None
    teardown = records.teardown
    assessments = records.assessment.assessments if records.assessment else {}
    return ExitReport(
        trial_id=trial.trial_id,
        status=status_of(records).value,
        started_at=trial.started_at,
        finished_at=trial.finished_at,
        trial=TrialSection(
            name=spec.name,
            sponsor=spec.sponsor,
            intended_use=spec.intended_use,
            risk_class=spec.risk_class,
            jurisdictions=list(spec.jurisdictions),
            spec=spec.model_dump(mode="json"),
        ),
        model=_model(trial, records),
        data=_data(trial, records),
        isolation=_isolation(trial, records),
        endpoint=EndpointSection(url=records.deployment.gateway_url, token_hint=records.deployment.token_hint)
        if records.deployment
        else None,
        metrics=_metrics(records),
        monitors=records.monitor_results(),
        assessments=list(assessments.values()),
        verdicts={code: a.verdict for code, a in assessments.items()},
        operations=_operations(trial, records),
        mlflow=MlflowSection(
            tracking_uri=run.tracking_uri, experiment_id=run.experiment_id, run_id=run.run_id
        )
        if run
        else None,
        teardown=TeardownSection(
            verified=bool(teardown and teardown.result.verified),
            detail={"removed": teardown.result.removed, "remaining": teardown.result.remaining}
            if teardown
            else {},
        ),
        events=trial.events,
        error=ErrorSection(**records.error.model_dump()) if records.error else None,
        model_card=_model_card(trial, records),
        failure_cases=records.workload.failure_cases if records.workload else None,
        evidence=records.workload.coverage if records.workload else None,
        reproducibility=ReproducibilitySection(
            versions=versions(), seeds=_seeds(trial), digests=_digests(records)
        ),
    )
