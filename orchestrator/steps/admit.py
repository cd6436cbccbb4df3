"""Admission: the trial can run here. Its template, evaluation kind and profiles are loaded once,
the backend is chosen, and the trial's MLflow run is opened."""

from __future__ import annotations

from orchestrator.trial import EXPERIMENT, Trial
from orchestrator.trial_records import Admission, MlflowRun


def _flat_params(value: object, prefix: str = "") -> dict[str, str]:
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key, item in value.items():
            out.update(_flat_params(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): str(value)[:500]}


def admit(trial: Trial) -> Admission:
    from mlflow import MlflowClient
    from mlflow.entities import Param, RunTag

    from orchestrator.backends import get_backend
    from orchestrator.preflight import preflight
    from orchestrator.tracking import MetricStreamer, ensure_experiment

    checked = preflight(trial.spec, f"trial {trial.trial_id}")
    backend = get_backend(trial.backend_choice, trial.settings)
    trial.live.backend = backend
    trial.workdir.mkdir(parents=True, exist_ok=True)
    settings, spec = trial.settings, trial.spec
    experiment_id = ensure_experiment(settings, EXPERIMENT)
    client = MlflowClient(settings.tracking_uri)
    tags = {
        "mlflow.runName": trial.trial_id,
        "regsandbox.trial_id": trial.trial_id,
        "regsandbox.sponsor": spec.sponsor,
        "regsandbox.jurisdictions": ",".join(spec.jurisdictions),
        "regsandbox.backend": backend.name,
        "regsandbox.kind": checked.kind,
        "regsandbox.risk_class": spec.risk_class,
    }
    run_id = client.create_run(experiment_id, run_name=trial.trial_id, tags=tags).info.run_id
    trial.live.client = client
    # One streamer for the whole trial: resource samples and monitor points share it.
    trial.live.streamer = MetricStreamer(client, run_id)
    params = _flat_params(spec.model_dump(mode="json"))
    client.log_batch(
        run_id,
        params=[Param(k, v) for k, v in params.items()],
        tags=[RunTag("mlflow.note.content", spec.intended_use)],
    )
    trial.publish(mlflow_run_id=run_id)
    trial.enter("admitted", mlflow_run_id=run_id, backend=backend.name, kind=checked.kind)
    return Admission(
        template=checked.template,
        kind=checked.kind,
        profiles=checked.profiles,
        backend=backend.name,
        mlflow=MlflowRun(tracking_uri=settings.tracking_uri, experiment_id=experiment_id, run_id=run_id),
    )
