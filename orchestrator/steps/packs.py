"""Data for a chat trial: the evaluation packs, validated, written as sent, and the model fetched."""

from __future__ import annotations

import time

from orchestrator.errors import PackError
from orchestrator.trial import Trial
from orchestrator.trial_records import Admission, DataReady


def prepare_packs(trial: Trial) -> DataReady:
    from mlflow.entities import Metric

    from orchestrator.evaluation.packs import load_packs, write_cases
    from orchestrator.steps.data import candidate_model

    admission: Admission = trial.records.need("admission")
    spec = trial.spec.data
    packs = load_packs(list(spec.packs or []), languages=spec.languages)
    empty = [p.manifest.id for p in packs if not p.items]
    if empty:
        raise PackError(
            f"trial {trial.trial_id}: no case of {', '.join(empty)} is in data.languages {spec.languages}"
        )
    data = write_cases(packs, trial.workdir)
    client, run = trial.live.client, admission.mlflow
    if client is not None and run is not None:
        summary = {
            p.key: {"cases": len(p.items), "sha256": p.sha256, "grader": p.manifest.grader} for p in packs
        }
        client.log_dict(run.run_id, summary, "evaluation-packs/summary.json")
        client.log_artifact(run.run_id, str(data.path), "evaluation-packs")
        now = int(time.time() * 1000)
        client.log_batch(run.run_id, metrics=[Metric("data/cases", float(data.cases), now, 0)])
    trial.event("evaluation_packs", packs=[p.key for p in packs], cases=data.cases, languages=data.languages)
    model = candidate_model(trial)
    trial.enter(
        "data_ready",
        source="packs",
        rows=data.cases,
        data_sha256=data.sha256,
        model=model.resolved,
        model_sha256=model.digest,
    )
    return DataReady(packs=data, model=model)
