"""The MLflow metric streamer against a real (SQLite-backed) MLflow tracking store."""

from __future__ import annotations

from pathlib import Path

from monitors.base import MetricPoint
from orchestrator.settings import Settings
from orchestrator.tracking import MetricStreamer, ensure_experiment


def test_streamer_batches_every_point_and_flushes_on_close(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    settings = Settings(home=tmp_path)
    experiment = ensure_experiment(settings, "streamer-test")
    client = MlflowClient(settings.tracking_uri)
    run_id = client.create_run(experiment).info.run_id
    streamer = MetricStreamer(client, run_id, max_batch=1000, flush_interval_s=0.2)
    for step in range(250):
        streamer.put(
            [
                MetricPoint("perf/auroc", step / 250, step),
                MetricPoint("latency/p95_ms", float(step), step),
                MetricPoint("ops/error_rate", 0.0, step),
                MetricPoint("ops/requests", float(step), step),
            ]
        )
    streamer.close()

    assert streamer.sent == 1000
    assert streamer.batches <= 10  # batched, never one call per point
    history = client.get_metric_history(run_id, "perf/auroc")
    assert sorted(m.step for m in history) == list(range(250))
    assert len(client.get_metric_history(run_id, "ops/requests")) == 250
    assert (tmp_path / "mlflow.db").is_file()


def test_experiment_artifacts_live_under_home(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    settings = Settings(home=tmp_path)
    experiment = ensure_experiment(settings, "where")
    assert ensure_experiment(settings, "where") == experiment
    location = MlflowClient(settings.tracking_uri).get_experiment(experiment).artifact_location
    assert location.startswith((tmp_path / "mlartifacts").as_uri())
