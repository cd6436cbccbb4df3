"""Assemble a trial's exit report from its context, on every path (completed or failed)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from orchestrator.model_artifacts import registered_version
from orchestrator.policy import load_profile
from orchestrator.records import utcnow
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
    ReportPaths,
    ReproducibilitySection,
    TeardownSection,
    TrialSection,
    write_report,
)
from orchestrator.reports.card import model_card_from_registry
from orchestrator.reports.model import ModelCard
from orchestrator.reports.sections import FailureCase, Incident
from orchestrator.steps import versions
from orchestrator.trial import TrialContext

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


def _makeup(ctx: TrialContext) -> list[MakeupRow]:
    if ctx.data is None:
        return []
    rows = []
    total = len(ctx.data)
    for attribute in ctx.spec.data.sensitive_attributes:
        counts = ctx.data[attribute].astype(str).value_counts().sort_index()
        rows += [
            MakeupRow(attribute=attribute, group=str(g), n=int(n), share=float(n) / total)
            for g, n in counts.items()
        ]
    return rows


def _data(ctx: TrialContext) -> DataSection | None:
    """Provenance, the data contract's findings and the make-up, as the data step recorded them."""
    from orchestrator.reports.model import ApprovedDataset, DataValidation, RepresentativenessRow

    prepared = ctx.prepared
    if prepared is None:
        return None
    provenance = prepared.report_provenance()
    return DataSection(
        source=prepared.source,
        generator=prepared.generator,
        rows=prepared.rows,
        seed=prepared.seed,
        digest=prepared.sha256,
        label=prepared.label,
        sensitive_attributes=prepared.sensitive_attributes,
        makeup=_makeup(ctx),
        approval_ref=ctx.spec.data.approved.approval_ref if ctx.spec.data.approved else None,
        validation=DataValidation(**prepared.report_validation()),
        provenance=ApprovedDataset(**provenance) if provenance else None,
        representativeness=[RepresentativenessRow(**row) for row in prepared.report_representativeness()],
    )


def _model_card(ctx: TrialContext) -> ModelCard | None:
    """The CHAI-style model card, from what the developer declared in the MLflow registry."""
    # The version fetched and deployed, not whatever the alias points at by report time.
    found = registered_version(ctx.model.resolved) if ctx.model else None
    if found is None or ctx.client is None:
        return None
    name, number = found
    try:
        version = ctx.client.get_model_version(name, number)
        registered = ctx.client.get_registered_model(name)
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


def _incidents(ctx: TrialContext) -> list[Incident] | None:
    """Isolation events seen while the sandbox ran; None when nothing was monitored."""
    if ctx.sampler is None:
        return None
    found = []
    for event in ctx.events:
        if event.kind != "isolation_event":
            continue
        detail = {k: v for k, v in event.detail.items() if k != "event"}
        description = str(event.detail.get("event", "event"))
        if detail:
            description += ": " + ", ".join(f"{k}={v}" for k, v in detail.items() if k != "processes")
        found.append(Incident(kind="isolation", description=description[:500], at=event.at))
    return found


def _resources(ctx: TrialContext) -> dict[str, float] | None:
    if ctx.sampler is None:
        return None
    found = {
        "peak_memory_mb": ctx.sampler.peak_memory_bytes / 2**20,
        "memory_limit_mb": float(ctx.spec.resources.memory_mb),
        "peak_pids": float(ctx.sampler.peak_pids),
        "oom_events": float(ctx.sampler.oom_events),
    }
    return found


def _failure_cases(ctx: TrialContext, limit: int = 20) -> list[FailureCase] | None:
    """The worst misses: positives scored lowest and negatives scored highest, verbatim."""
    if ctx.data is None or not ctx.monitors or ctx.sink is None:
        return None
    traffic = ctx.workdir / "traffic.jsonl"
    if not traffic.is_file():
        return None
    from orchestrator.records import TrafficRecord
    from orchestrator.workload import scores_from

    scores: dict[str, float] = {}
    with traffic.open(encoding="utf-8") as handle:
        for line in handle:
            record = TrafficRecord.model_validate_json(line)
            if record.origin != "evaluation" or not record.case_ids or record.status != 200:
                continue
            for case_id, score in zip(
                record.case_ids, scores_from(record.response, len(record.case_ids)), strict=True
            ):
                scores[case_id] = float(score)
    label = ctx.spec.data.label
    truth = ctx.data.set_index("case_id")[label]
    misses = []
    for case_id, score in scores.items():
        if score != score:  # NaN: no usable answer, counted as unscored elsewhere
            continue
        expected = int(truth.get(case_id, -1))
        error = (1.0 - score) if expected == 1 else score
        misses.append((error, case_id, expected, score))
    misses.sort(reverse=True)
    attributes = ctx.spec.data.sensitive_attributes
    rows = ctx.data.set_index("case_id")
    cases = []
    for _, case_id, expected, score in misses[:limit]:
        row = rows.loc[case_id]
        note = ", ".join(f"{a}={row[a]}" for a in attributes if a in row.index)
        cases.append(FailureCase(case_id=case_id, expected=expected, predicted=round(score, 4), note=note))
    return cases


def _seeds(ctx: TrialContext) -> dict[str, int]:
    seeds = {}
    if ctx.spec.data.source == "synthetic":
        seeds["data"] = ctx.spec.data.synthetic_or_default.seed
    return seeds


def _digests(ctx: TrialContext) -> dict[str, str]:
    digests: dict[str, str] = {}
    if ctx.model:
        digests["model"] = f"sha256:{ctx.model.digest}"
    if ctx.data_digest:
        digests["data"] = f"sha256:{ctx.data_digest}"
    if ctx.endpoint and ctx.endpoint.image_digest:
        digests["image"] = ctx.endpoint.image_digest
    for assessment in ctx.assessments.values():
        digests[f"profile:{assessment.profile_id}@{assessment.profile_version}"] = assessment.profile_digest
    if not ctx.assessments:
        for code in ctx.spec.jurisdictions:
            try:
                profile = load_profile(code)
            except Exception:  # noqa: S112 - a broken profile is reported as the trial's error already
                continue
            digests[f"profile:{profile.id}@{profile.version}"] = profile.digest
    return digests


def _isolation(ctx: TrialContext) -> IsolationSection | None:
    """What was verified: the probes run inside the sandbox, then the engine's own read-back."""
    if ctx.sandbox is None or ctx.backend is None:
        return None
    attestation = ctx.attestation
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
    controls += [
        IsolationControl(control=c.control, applied=c.applied, detail=c.detail) for c in ctx.controls
    ]
    notes = list(ISOLATION_NOTES.get(ctx.backend.name, []))
    if attestation is None:
        notes.insert(0, "The isolation probes did not run: nothing was verified from inside the sandbox.")
    elif not attestation.passed:
        failed = ", ".join(p.probe for p in attestation.failures)
        notes.insert(
            0, f"Isolation probes FAILED ({failed}); the trial stopped before any model or data entered."
        )
    verified = bool(attestation and attestation.passed) and all(c.applied for c in ctx.controls)
    return IsolationSection(
        backend=ctx.backend.name,
        level=attestation.verified_level if attestation else f"{ctx.backend.isolation_level} (NOT verified)",
        controls=controls,
        verified=verified,
        notes=notes,
    )


def build_report(ctx: TrialContext) -> ExitReport:
    spec = ctx.spec
    data = _data(ctx)
    model = None
    if ctx.model:
        model = ModelSection(
            uri=ctx.model.uri,
            resolved=ctx.model.resolved,
            digest=ctx.model.digest,
            template=spec.model.template,
            image=ctx.endpoint.image if ctx.endpoint else None,
            image_digest=ctx.endpoint.image_digest if ctx.endpoint else None,
            flavors=ctx.model.flavors,
        )
    isolation = _isolation(ctx)
    counts: dict[str, int] = ctx.sink.counts if ctx.sink else {}
    teardown_detail: dict[str, Any] = {}
    if ctx.teardown_result:
        teardown_detail = {"removed": ctx.teardown_result.removed, "remaining": ctx.teardown_result.remaining}
    return ExitReport(
        trial_id=ctx.trial_id,
        status="failed" if ctx.error else "completed",
        started_at=ctx.started_at,
        finished_at=ctx.finished_at or utcnow(),
        trial=TrialSection(
            name=spec.name,
            sponsor=spec.sponsor,
            intended_use=spec.intended_use,
            risk_class=spec.risk_class,
            jurisdictions=list(spec.jurisdictions),
            spec=spec.model_dump(mode="json"),
        ),
        model=model,
        data=data,
        isolation=isolation,
        endpoint=EndpointSection(url=ctx.gateway.url, token_hint=(ctx.developer_token or "")[-4:] or None)
        if ctx.gateway and ctx.gateway.url
        else None,
        metrics=MetricsSection(values=ctx.values, intervals=ctx.intervals) if ctx.values else None,
        monitors=ctx.results,
        assessments=list(ctx.assessments.values()),
        verdicts=ctx.verdicts,
        operations=OperationsSection(
            requests=counts.get("developer", 0) + counts.get("evaluation", 0),
            errors=counts.get("errors", 0),
            developer_requests=counts.get("developer", 0),
            resources=_resources(ctx),
            incidents=_incidents(ctx),
        )
        if counts
        else None,
        mlflow=MlflowSection(
            tracking_uri=ctx.settings.tracking_uri, experiment_id=ctx.experiment_id, run_id=ctx.run_id
        )
        if ctx.run_id and ctx.experiment_id
        else None,
        teardown=TeardownSection(
            verified=bool(ctx.teardown_result and ctx.teardown_result.verified), detail=teardown_detail
        ),
        events=ctx.events,
        error=ErrorSection(**ctx.error) if ctx.error else None,
        model_card=_model_card(ctx),
        failure_cases=_failure_cases(ctx),
        reproducibility=ReproducibilitySection(versions=versions(), seeds=_seeds(ctx), digests=_digests(ctx)),
    )


def report(ctx: TrialContext) -> ReportPaths:
    """Write, sign and (when there is a run) attach the exit report to the MLflow run."""
    ctx.finished_at = ctx.finished_at or utcnow()
    paths = write_report(build_report(ctx), ctx.settings.reports_dir / ctx.trial_id, ctx.settings.keys_dir)
    ctx.report = paths
    if ctx.client and ctx.run_id:
        for path in (paths.json_, paths.html, paths.pdf, paths.signature, paths.envelope):
            if path:
                ctx.client.log_artifact(ctx.run_id, path, artifact_path="exit-report")
        traffic = ctx.workdir / "traffic.jsonl"
        if traffic.is_file():
            ctx.client.log_artifact(ctx.run_id, str(traffic), artifact_path="traffic")
    ctx.log(f"report written: {paths.html}")
    return paths
