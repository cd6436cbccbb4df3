"""The sandbox's life: provision it, prove its isolation, deploy the model behind the gateway,
and tear it all down again on every path."""

from __future__ import annotations

import time

from orchestrator.errors import IsolationError
from orchestrator.sandbox_evidence import list_processes, record_last_state
from orchestrator.trial import Trial
from orchestrator.trial_records import (
    Admission,
    Attested,
    DataReady,
    Deployment,
    Provisioned,
    Teardown,
    with_record,
)


def provision(trial: Trial) -> Provisioned:
    from orchestrator.slots import acquire_slot

    backend = trial.live.backend
    if backend is None:
        raise RuntimeError("step order broken: no backend chosen at admission")
    settings = trial.settings
    queued = time.monotonic()
    trial.live.slot = slot = acquire_slot(
        settings.home / "slots",
        settings.max_sandboxes,
        trial.trial_id,
        settings.slot_wait_s,
        trial.log,
    )
    started = time.monotonic()
    queued_s = round(started - queued, 3)
    trial.live.sandbox = sandbox = backend.provision(trial.trial_id, trial.spec.resources)
    seconds = round(time.monotonic() - started, 3)
    trial.enter("provisioned", backend=backend.name, slot=slot.index, seconds=seconds, queued_s=queued_s)
    return Provisioned(sandbox=sandbox, slot=slot.index, seconds=seconds, queued_s=queued_s)


def attest(trial: Trial) -> Attested:
    """Prove the sandbox's isolation from the inside before any model or data enters it."""
    sandbox = trial.records.need("provisioned").sandbox
    backend = trial.live.backend
    assert backend is not None  # noqa: S101 - provision needed it
    started = time.monotonic()
    attestation = backend.attest(sandbox)
    trial.event(
        "attested",
        level=attestation.verified_level,
        passed=attestation.passed,
        probes={p.probe: p.passed for p in attestation.probes if p.required},
        seconds=round(time.monotonic() - started, 3),
    )
    if not attestation.passed:
        failed = ", ".join(f"{p.probe} ({p.detail})" for p in attestation.failures)
        refusal = IsolationError(
            f"[{backend.name}] trial {trial.trial_id}: isolation probes failed before deployment: {failed}"
        )
        raise with_record(refusal, Attested(attestation=attestation))
    trial.log(f"isolation verified: {attestation.verified_level}, {len(attestation.probes)} probes")
    # The probes knock on the same firewall rules: what the model tries later is counted from here.
    return Attested(attestation=attestation, refused_baseline=backend.refused_connections(sandbox))


def deploy(trial: Trial) -> Deployment:
    """Start the model server in the sandbox and open the gateway in front of it."""
    from orchestrator.gateway import Gateway, hash_token, new_token
    from orchestrator.resources import ResourceSampler
    from orchestrator.security import platform_credential
    from orchestrator.workload import TrafficSink

    admission: Admission = trial.records.need("admission")
    data: DataReady = trial.records.need("data")
    sandbox = trial.records.need("provisioned").sandbox
    live = trial.live
    backend, streamer = live.backend, live.streamer
    assert backend is not None and streamer is not None and data.model is not None  # noqa: S101
    endpoint = backend.deploy(sandbox, admission.template, data.model.path)
    controls = backend.isolation_controls(sandbox)
    # What a healthy model server looks like from outside; teardown reports only what is new.
    at_deploy = list_processes(trial, backend, sandbox)
    developer, developer_hash = new_token()
    evaluation, evaluation_hash = new_token()
    live.developer_token, live.evaluation_token = developer, evaluation
    # The platform's gateway forwards developers' calls with a credential derived for this trial.
    platform = hash_token(platform_credential(trial.settings.keys_dir, trial.trial_id))
    live.sink = TrafficSink(trial.workdir / "traffic.jsonl")
    live.gateway = Gateway(
        trial.trial_id,
        endpoint.url,
        admission.template.paths,
        {developer_hash: "developer", platform: "platform", evaluation_hash: "evaluation"},
        live.sink,
        host=trial.settings.gateway_host,
        timeout_s=admission.template.answer_timeout_s,
    )
    url = live.gateway.start()
    (trial.workdir / "endpoint.txt").write_text(f"{url}\n", encoding="utf-8")
    live.sampler = ResourceSampler(backend, sandbox, streamer.put, trial.event).start()
    trial.publish(gateway_url=url)
    trial.enter("deployed", endpoint=url, model_ready_s=round(endpoint.ready_s, 3), image=endpoint.image)
    return Deployment(
        endpoint=endpoint,
        controls=controls,
        processes_at_deploy=at_deploy,
        gateway_url=url,
        token_hint=developer[-4:],
    )


def teardown(trial: Trial) -> Teardown:
    """Stop the gateway and remove every sandbox object; safe after any failure."""
    from orchestrator.backends import TeardownResult

    live, records = trial.live, trial.records
    peaks = live.close()
    refused = None
    if live.backend is not None and live.sandbox is not None:
        attested, deployment = records.attested, records.deployment
        refused = record_last_state(
            trial,
            live.backend,
            live.sandbox,
            attested.refused_baseline if attested else None,
            deployment.processes_at_deploy if deployment else None,
        )
    if live.backend is None:
        # No backend was chosen, so the trial owns no sandbox object to remove.
        result = TeardownResult(trial_id=trial.trial_id, removed=[], remaining=[])
    else:
        result = live.backend.teardown(trial.trial_id)
    if live.slot is not None:
        live.slot.release()
    trial.event("teardown", verified=result.verified, removed=result.removed, remaining=result.remaining)
    trial.log(
        f"teardown {'verified' if result.verified else 'INCOMPLETE'}: {len(result.removed)} object(s) removed"
    )
    return Teardown(
        result=result,
        traffic=dict(live.sink.counts) if live.sink else {},
        refused_connections=refused,
        resources=peaks,
    )
