"""The steps of a trial, in lifecycle order; each takes the TrialContext and fills it in.

Steps raise on failure; the caller (the flow) records the failure, tears down and still
writes a report. Every step that can be drilled calls ``ctx.checkpoint(step)`` first.
"""

from __future__ import annotations

import importlib.metadata
import time

from orchestrator.errors import DataError, IsolationError, TrialFailedError
from orchestrator.sandbox_evidence import list_processes, record_last_state
from orchestrator.settings import Settings
from orchestrator.trial import EXPERIMENT, TrialContext

FEATURE_EXCLUDE = {"case_id"}


def _flat_params(value: object, prefix: str = "") -> dict[str, str]:
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key, item in value.items():
            out.update(_flat_params(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): str(value)[:500]}


def admit(ctx: TrialContext) -> None:
    """Check the trial can run (template, profiles) and open its MLflow run."""
    from mlflow import MlflowClient
    from mlflow.entities import Param, RunTag

    from orchestrator.policy import load_profile
    from orchestrator.templates import load_template
    from orchestrator.tracking import ensure_experiment

    ctx.checkpoint("admit")
    load_template(ctx.spec.model.template)
    for code in ctx.spec.jurisdictions:
        load_profile(code)
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    ctx.experiment_id = ensure_experiment(ctx.settings, EXPERIMENT)
    ctx.client = MlflowClient(ctx.settings.tracking_uri)
    tags = {
        "mlflow.runName": ctx.trial_id,
        "regsandbox.trial_id": ctx.trial_id,
        "regsandbox.sponsor": ctx.spec.sponsor,
        "regsandbox.jurisdictions": ",".join(ctx.spec.jurisdictions),
        "regsandbox.backend": ctx.backend_name,
        "regsandbox.risk_class": ctx.spec.risk_class,
    }
    run = ctx.client.create_run(ctx.experiment_id, run_name=ctx.trial_id, tags=tags)
    ctx.run_id = run.info.run_id
    params = _flat_params(ctx.spec.model_dump(mode="json"))
    ctx.client.log_batch(
        ctx.run_id,
        params=[Param(k, v) for k, v in params.items()],
        tags=[RunTag("mlflow.note.content", ctx.spec.intended_use)],
    )
    from orchestrator.tracking import MetricStreamer

    # One streamer for the whole trial: resource samples and monitor points share it.
    ctx.streamer = MetricStreamer(ctx.client, ctx.run_id)
    ctx.enter("admitted", mlflow_run_id=ctx.run_id)


def prepare_data(ctx: TrialContext) -> None:
    """Produce (or take in and verify) the data, enforce its contract, and fetch the model."""
    from mlflow.entities import Metric

    from orchestrator.data.prepare import prepare_trial_data
    from orchestrator.model_artifacts import fetch_model

    ctx.checkpoint("prepare_data")
    prepared = prepare_trial_data(ctx.spec, ctx.workdir)
    # Set before any check can stop the trial, so a failure report still describes the data.
    ctx.prepared = prepared
    ctx.data, ctx.data_digest = prepared.frame, prepared.sha256
    contract = prepared.contract
    if ctx.client and ctx.run_id:
        ctx.client.log_dict(ctx.run_id, contract.gx_result, "data-contract/result.json")
        summary = prepared.model_dump(mode="json", exclude={"contract": {"gx_result"}})
        ctx.client.log_dict(ctx.run_id, summary, "data-contract/summary.json")
        counts = {
            "data/contract_evaluated": contract.evaluated,
            "data/contract_blocking_failures": len(contract.blocking_failures),
            "data/contract_advisory_failures": len(contract.advisory_failures),
            "data/rows": prepared.rows,
        }
        now = int(time.time() * 1000)
        ctx.client.log_batch(ctx.run_id, metrics=[Metric(k, float(v), now, 0) for k, v in counts.items()])
    ctx.event(
        "data_contract",
        suite=contract.suite,
        evaluated=contract.evaluated,
        blocking=[f.message for f in contract.blocking_failures],
        advisory=len(contract.advisory_failures),
    )
    if prepared.blocking:
        raise DataError(f"trial {ctx.trial_id}: {prepared.blocking_summary()}")
    ctx.model = fetch_model(ctx.spec.model.uri, ctx.workdir / "model", ctx.settings)
    ctx.enter(
        "data_ready",
        source=prepared.source,
        rows=prepared.rows,
        data_sha256=ctx.data_digest,
        model=ctx.model.resolved,
        model_sha256=ctx.model.digest,
    )


def provision(ctx: TrialContext) -> None:
    from orchestrator.backends import get_backend
    from orchestrator.slots import acquire_slot

    ctx.checkpoint("provision")
    ctx.backend = get_backend(ctx.backend_name, ctx.settings)
    ctx.slot = acquire_slot(
        ctx.settings.home / "slots",
        ctx.settings.max_sandboxes,
        ctx.trial_id,
        ctx.spec.resources.timeout_s,
        ctx.log,
    )
    started = time.monotonic()
    ctx.sandbox = ctx.backend.provision(ctx.trial_id, ctx.spec.resources)
    ctx.enter(
        "provisioned",
        backend=ctx.backend.name,
        slot=ctx.slot.index,
        seconds=round(time.monotonic() - started, 3),
    )


def attest(ctx: TrialContext) -> None:
    """Prove the sandbox's isolation from the inside before any model or data enters it."""
    ctx.checkpoint("attest")
    assert ctx.backend and ctx.sandbox  # noqa: S101 - guaranteed by the step order
    started = time.monotonic()
    ctx.attestation = ctx.backend.attest(ctx.sandbox)
    ctx.event(
        "attested",
        level=ctx.attestation.verified_level,
        passed=ctx.attestation.passed,
        probes={p.probe: p.passed for p in ctx.attestation.probes if p.required},
        seconds=round(time.monotonic() - started, 3),
    )
    if not ctx.attestation.passed:
        failed = ", ".join(f"{p.probe} ({p.detail})" for p in ctx.attestation.failures)
        raise IsolationError(
            f"[{ctx.backend.name}] trial {ctx.trial_id}: isolation probes failed before deployment: {failed}"
        )
    # The probes knock on the same firewall rules: what the model tries later is counted from here.
    ctx.refused_baseline = ctx.backend.refused_connections(ctx.sandbox)
    ctx.log(f"isolation verified: {ctx.attestation.verified_level}, {len(ctx.attestation.probes)} probes")


def deploy(ctx: TrialContext) -> None:
    """Start the model server in the sandbox and open the gateway in front of it."""
    from orchestrator.gateway import Gateway, new_token
    from orchestrator.templates import load_template
    from orchestrator.workload import TrafficSink

    ctx.checkpoint("deploy")
    assert ctx.backend and ctx.sandbox and ctx.model  # noqa: S101 - guaranteed by the step order
    template = load_template(ctx.spec.model.template)
    ctx.endpoint = ctx.backend.deploy(ctx.sandbox, template, ctx.model.path)
    ctx.controls = ctx.backend.isolation_controls(ctx.sandbox)
    # What a healthy model server looks like from outside; teardown reports only what is new.
    ctx.processes_at_deploy = list_processes(ctx, ctx.backend, ctx.sandbox)
    developer, developer_hash = new_token()
    evaluation, evaluation_hash = new_token()
    ctx.developer_token = developer
    ctx.evaluation_token = evaluation
    ctx.sink = TrafficSink(ctx.workdir / "traffic.jsonl")
    ctx.gateway = Gateway(
        ctx.trial_id,
        ctx.endpoint.url,
        template.paths,
        {developer_hash: "developer", evaluation_hash: "evaluation"},
        ctx.sink,
        host=ctx.settings.gateway_host,
    )
    url = ctx.gateway.start()
    (ctx.workdir / "endpoint.txt").write_text(f"{url}\n", encoding="utf-8")
    from orchestrator.resources import ResourceSampler

    assert ctx.streamer  # noqa: S101
    ctx.sampler = ResourceSampler(ctx.backend, ctx.sandbox, ctx.streamer.put, ctx.event).start()
    ctx.enter(
        "deployed", endpoint=url, model_ready_s=round(ctx.endpoint.ready_s, 3), image=ctx.endpoint.image
    )


def run_workload(ctx: TrialContext) -> None:
    """Send the evaluation cases through the gateway while monitors stream to MLflow."""
    from monitors import default_monitors
    from orchestrator.data.reference import load_reference
    from orchestrator.workload import EvidenceCollector
    from orchestrator.workload import run_workload as send_all

    ctx.checkpoint("run_workload")
    assert ctx.streamer and ctx.gateway and ctx.sink and ctx.data is not None and ctx.model  # noqa: S101
    spec = ctx.spec
    exclude = {spec.data.label, *FEATURE_EXCLUDE}
    columns = ctx.model.input_columns or [c for c in ctx.data.columns if c not in exclude]
    reference = load_reference(spec, ctx.workdir, columns)
    ctx.event("drift_reference", **reference.summary())
    features = reference.features
    ctx.monitors = [
        *default_monitors(spec.data.sensitive_attributes, spec.workload.min_group_size),
        reference.drift_monitor(),
    ]
    collector = EvidenceCollector(
        ctx.data,
        spec.data.label,
        spec.data.sensitive_attributes,
        ctx.monitors,
        ctx.streamer.put,
        features=features,
    )
    ctx.enter("observing", cases=len(ctx.data), batch_size=spec.workload.batch_size)
    deadline = ctx.started_at.timestamp() + spec.resources.timeout_s

    def progress(done: int, total: int) -> None:
        ctx.log(f"workload {done}/{total} requests")
        if time.time() > deadline:
            raise TrialFailedError(f"trial {ctx.trial_id}: timeout of {spec.resources.timeout_s}s reached")

    requests = send_all(
        ctx.gateway.url,
        ctx.evaluation_token,
        ctx.data,
        columns,
        spec.workload.batch_size,
        spec.workload.concurrency,
        ctx.sink,
        collector,
        progress,
    )
    if spec.workload.developer_window_s:
        ctx.log(
            f"endpoint open for developer traffic for {spec.workload.developer_window_s:g}s: "
            f"{ctx.gateway.url}"
        )
        until = time.monotonic() + spec.workload.developer_window_s
        while time.monotonic() < until:
            collector.absorb(ctx.sink.drain(wait_s=0.5))
    ctx.event("workload_done", requests=requests, steps=collector.step, points=collector.points)


def monitor(ctx: TrialContext) -> None:
    """Close the monitors, record resource use, and flush every point to MLflow."""
    from monitors.base import MetricPoint

    ctx.checkpoint("monitor")
    assert ctx.streamer and ctx.sampler  # noqa: S101
    from orchestrator.reports.pdf import prewarm

    prewarm()  # the report comes next: its PDF worker loads WeasyPrint and the fonts meanwhile
    ctx.results = [m.result() for m in ctx.monitors]
    for result in ctx.results:
        ctx.values.update(result.values)
        ctx.intervals.update(result.intervals)
    ctx.values.update(ctx.sampler.stop())
    final = [MetricPoint(k, float(v), step=0) for k, v in ctx.values.items() if v is not None]
    final = [MetricPoint(f"final/{p.key}", p.value, step=0) for p in final]
    for key, (low, high) in ctx.intervals.items():
        final += [MetricPoint(f"final/{key}_ci_low", low, 0), MetricPoint(f"final/{key}_ci_high", high, 0)]
    ctx.streamer.put(final)
    stats = ctx.streamer.close(timeout_s=ctx.settings.mlflow_flush_timeout_s)
    ctx.event("monitored", **stats.model_dump())


def assess(ctx: TrialContext) -> None:
    from mlflow.entities import RunTag

    from monitors import findings
    from orchestrator.policy import assess_all

    ctx.checkpoint("assess")
    # Findings let a failed rule name the subgroup or feature behind it, not only the number.
    ctx.assessments = assess_all(
        ctx.spec.jurisdictions, ctx.values, ctx.intervals, findings=findings(ctx.results)
    )
    if ctx.client and ctx.run_id:
        ctx.client.log_batch(
            ctx.run_id, tags=[RunTag(f"regsandbox.verdict.{c}", v) for c, v in ctx.verdicts.items()]
        )
    ctx.enter("assessed", verdicts=ctx.verdicts)


def teardown(ctx: TrialContext) -> None:
    """Stop the gateway and remove every sandbox object; safe after any failure."""
    if ctx.sampler is not None:
        ctx.sampler.stop()
    if ctx.gateway is not None:
        ctx.gateway.stop()
    if ctx.streamer is not None:
        ctx.streamer.close()
    if ctx.backend is not None and ctx.sandbox is not None:
        record_last_state(ctx, ctx.backend, ctx.sandbox)
    if ctx.backend is None:
        # Provisioning never started, so the trial owns no sandbox object to remove.
        from orchestrator.backends import TeardownResult

        ctx.teardown_result = TeardownResult(trial_id=ctx.trial_id, removed=[], remaining=[])
    else:
        ctx.teardown_result = ctx.backend.teardown(ctx.trial_id)
    ctx.event(
        "teardown",
        verified=ctx.teardown_result.verified,
        removed=ctx.teardown_result.removed,
        remaining=ctx.teardown_result.remaining,
    )
    if ctx.slot is not None:
        ctx.slot.release()
    ctx.log(
        f"teardown {'verified' if ctx.teardown_result.verified else 'INCOMPLETE'}: "
        f"{len(ctx.teardown_result.removed)} object(s) removed"
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


def settings_summary(settings: Settings) -> dict[str, str]:
    return {
        "home": str(settings.home),
        "tracking_uri": settings.tracking_uri,
        "base_image": settings.base_image,
    }
