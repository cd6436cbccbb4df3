"""Data: produce (or take in and verify) the trial's data, enforce its contract, fetch the model."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from orchestrator.errors import DataError
from orchestrator.trial import Trial
from orchestrator.trial_records import Admission, DataReady, with_record

if TYPE_CHECKING:
    from orchestrator.model_artifacts import ModelArtifact


def prepare_data(trial: Trial) -> DataReady:
    from mlflow.entities import Metric

    from orchestrator.data.prepare import CASE_ID, prepare_trial_data
    from orchestrator.data.reference import load_reference

    admission: Admission = trial.records.need("admission")
    if admission.kind == "chat":
        from orchestrator.steps.packs import prepare_packs

        return prepare_packs(trial)
    prepared = prepare_trial_data(trial.spec, trial.workdir)
    contract = prepared.contract
    client, run = trial.live.client, admission.mlflow
    if client is not None and run is not None:
        client.log_dict(run.run_id, contract.gx_result, "data-contract/result.json")
        summary = prepared.model_dump(mode="json", exclude={"contract": {"gx_result"}})
        client.log_dict(run.run_id, summary, "data-contract/summary.json")
        counts = {
            "data/contract_evaluated": contract.evaluated,
            "data/contract_blocking_failures": len(contract.blocking_failures),
            "data/contract_advisory_failures": len(contract.advisory_failures),
            "data/rows": prepared.rows,
        }
        now = int(time.time() * 1000)
        client.log_batch(run.run_id, metrics=[Metric(k, float(v), now, 0) for k, v in counts.items()])
    trial.event(
        "data_contract",
        suite=contract.suite,
        evaluated=contract.evaluated,
        blocking=[f.message for f in contract.blocking_failures],
        advisory=len(contract.advisory_failures),
    )
    if prepared.blocking:
        # The failure report still describes the data that stopped the trial.
        refusal = DataError(f"trial {trial.trial_id}: {prepared.blocking_summary()}")
        raise with_record(refusal, DataReady(prepared=prepared))
    model = candidate_model(trial)
    # The reference is data too: an altered reference file stops the trial here, before any sandbox.
    inputs = model.input_columns or [c for c in prepared.columns if c not in {prepared.label, CASE_ID}]
    reference = load_reference(trial.spec, trial.workdir, inputs)
    trial.event("drift_reference", **reference.summary())
    trial.enter(
        "data_ready",
        source=prepared.source,
        rows=prepared.rows,
        data_sha256=prepared.sha256,
        model=model.resolved,
        model_sha256=model.digest,
    )
    return DataReady(prepared=prepared, model=model, reference=reference)


def candidate_model(trial: Trial) -> ModelArtifact:
    """The candidate as deployed: an MLflow model fetched onto the host, or the named image."""
    from orchestrator.model_artifacts import fetch_model
    from orchestrator.named_image import image_artifact

    model, dest = trial.spec.model, trial.workdir / "model"
    if model.image is not None:
        return image_artifact(model.image.name, dest, trial.settings)
    assert model.uri is not None  # noqa: S101 - preflight requires one of the two
    return fetch_model(model.uri, dest, trial.settings)
