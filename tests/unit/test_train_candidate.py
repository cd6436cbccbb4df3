"""The sample candidate model: trained once, registered with an alias, loadable, idempotent."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from examples.train_candidate import DEVELOPER, FEATURES, TRAINING_POPULATION, ensure_candidate
from orchestrator.data.synthetic import generate_sea_population
from orchestrator.settings import Settings

URI = "models:/diabetes-risk@candidate"


@pytest.fixture(scope="module")
def candidate_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home: Path = tmp_path_factory.mktemp("regsandbox-home")
    previous_tracking, previous_registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    previous_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REGSANDBOX_HOME", str(home))
        # A tracking server configured on the machine must not receive the test's model.
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("REGSANDBOX_MLFLOW_TRACKING_URI", raising=False)
        yield Settings()
    mlflow.set_tracking_uri(previous_tracking)
    mlflow.set_registry_uri(previous_registry)
    # set_tracking_uri also exports MLFLOW_TRACKING_URI: put the environment back as it was, or
    # every later test's Settings would point at this module's store.
    for key, value in previous_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def first_uri(candidate_settings: Settings) -> str:
    return ensure_candidate(candidate_settings)


def test_creates_the_registered_model_and_alias(candidate_settings: Settings, first_uri: str) -> None:
    assert first_uri == URI
    assert str(candidate_settings.home) in candidate_settings.tracking_uri
    client = MlflowClient()
    version = client.get_model_version_by_alias("diabetes-risk", "candidate")
    assert str(version.version) == "1"
    model = client.get_registered_model("diabetes-risk")
    assert model.tags["developer"] == DEVELOPER
    assert model.tags["training_population"] == TRAINING_POPULATION
    assert "South-East Asian" in model.description

    assert version.run_id is not None
    run = client.get_run(version.run_id)
    assert client.get_experiment(run.info.experiment_id).name == "candidates"
    assert run.data.metrics["train_auroc"] >= 0.8
    assert run.data.metrics["holdout_auroc"] >= 0.8
    assert run.data.tags["developer"] == DEVELOPER


def test_second_call_is_a_no_op(candidate_settings: Settings, first_uri: str) -> None:
    client = MlflowClient()
    before = client.get_model_version_by_alias("diabetes-risk", "candidate")
    assert ensure_candidate(candidate_settings) == first_uri
    after = client.get_model_version_by_alias("diabetes-risk", "candidate")
    assert str(after.version) == str(before.version) == "1"
    assert len(client.search_model_versions("name='diabetes-risk'")) == 1


def test_loaded_model_predicts_probabilities_for_sea_rows(first_uri: str) -> None:
    model = mlflow.pyfunc.load_model(first_uri)
    sea = generate_sea_population({"SG": 1, "MY": 1, "TH": 1, "ID": 1, "PH": 1, "VN": 1}, 600, seed=3)
    probabilities = np.asarray(model.predict(sea[FEATURES]))
    assert probabilities.shape == (600, 2)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    # The candidate ranks SEA cases reasonably but was trained where diabetes needs a higher BMI.
    assert probabilities[:, 1].mean() < sea["diabetes"].mean()


def test_force_registers_a_new_version(candidate_settings: Settings, first_uri: str) -> None:
    assert ensure_candidate(candidate_settings, force=True) == first_uri
    version = MlflowClient().get_model_version_by_alias("diabetes-risk", "candidate")
    assert str(version.version) == "2"
