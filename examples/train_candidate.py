"""Build the sample candidate: a diabetes-risk screening model from the developer "acme-health".

It is trained on the synthetic upper-income-like reference population and registered in MLflow as
``models:/diabetes-risk@candidate``. Its inputs are the screening features a primary-care nurse has at
hand (age, sex, BMI, systolic pressure, smoking, family history); ethnicity, country and fasting
glucose are deliberately left out, since the model flags people whose diabetes has not been diagnosed
yet. Trained where diabetes appears at higher BMI, it under-estimates risk in South-East Asian
populations: the population shift a sandbox trial is there to find.

Run ``python examples/train_candidate.py [--force]``; it prints the model URI.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from importlib.metadata import version as installed_version
from typing import TYPE_CHECKING

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from orchestrator.settings import Settings, get_settings
from orchestrator.tracking import configure_mlflow, ensure_experiment

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

MODEL_NAME = "diabetes-risk"
MODEL_ALIAS = "candidate"
EXPERIMENT = "candidates"
DEVELOPER = "acme-health"
TRAINING_POPULATION = "reference (upper-income-like)"
INTENDED_USE = "Flag adults at risk of undiagnosed type 2 diabetes in primary care"
NUMERIC_FEATURES = ["age", "bmi", "systolic_bp", "smoking", "family_history"]
FEATURES = ["age", "sex", "bmi", "systolic_bp", "smoking", "family_history"]
LABEL = "diabetes"
TRAINING_ROWS = 20_000
TRAINING_SEED = 2024
HOLDOUT_ROWS = 20_000
HOLDOUT_SEED = 2025

logger = logging.getLogger(__name__)


# The model's runtime needs, pinned to what it was trained with. Listed rather than inferred: inference
# imports the model in a subprocess and also picks up whatever that process happened to import.
RUNTIME_PACKAGES = ("mlflow", "scikit-learn", "skops", "numpy", "pandas", "scipy")


def build_pipeline() -> Pipeline:
    """One-hot sex, standardised numeric features, logistic regression."""
    # scikit-learn and the generator are imported where they are used, so that finding an already
    # registered candidate does not pay for them.
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    preprocess = ColumnTransformer(
        [
            ("sex", OneHotEncoder(categories=[["female", "male"]], drop="first"), ["sex"]),
            ("numeric", StandardScaler(), NUMERIC_FEATURES),
        ]
    )
    return Pipeline([("preprocess", preprocess), ("classifier", LogisticRegression(max_iter=1_000))])


def screening_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's inputs, with the generator's dtypes (integers stay integers).

    MLflow enforces the logged signature when the model is served and will not turn int64 into
    float64, so the signature must describe the columns exactly as a trial sends them.
    """
    return frame[FEATURES].copy()


def train_candidate(
    rows: int = TRAINING_ROWS, seed: int = TRAINING_SEED
) -> tuple[Pipeline, pd.DataFrame, dict[str, float]]:
    """Fit the pipeline on a reference population; return it, its training inputs and its metrics."""
    from sklearn.metrics import roc_auc_score

    from orchestrator.data.synthetic import generate_reference_population

    training = generate_reference_population(rows, seed)
    features = screening_features(training)
    model = build_pipeline().fit(features, training[LABEL])
    holdout = generate_reference_population(HOLDOUT_ROWS, HOLDOUT_SEED)
    metrics = {
        "train_auroc": float(roc_auc_score(training[LABEL], model.predict_proba(features)[:, 1])),
        "holdout_auroc": float(
            roc_auc_score(holdout[LABEL], model.predict_proba(screening_features(holdout))[:, 1])
        ),
        "train_prevalence": float(training[LABEL].mean()),
    }
    return model, features, metrics


def _existing_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        # A missing model or alias is the normal first-run case; anything else (a server that does
        # not answer, bad credentials) must surface.
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def ensure_candidate(
    settings: Settings | None = None, name: str = MODEL_NAME, alias: str = MODEL_ALIAS, force: bool = False
) -> str:
    """Return ``models:/<name>@<alias>``, training and registering the model first if it is missing."""
    settings = settings or get_settings()
    configure_mlflow(settings)
    client = MlflowClient()
    uri = f"models:/{name}@{alias}"
    if not force and _existing_version(client, name, alias) is not None:
        return uri

    from mlflow.models import infer_signature

    model, features, metrics = train_candidate()
    example = features.head(5)
    with warnings.catch_warnings():
        # MLflow hints that integer columns cannot carry missing values; the generator never emits any.
        warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
        signature = infer_signature(example, model.predict_proba(example))
    experiment_id = ensure_experiment(settings, EXPERIMENT)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{name}-training"):
        mlflow.log_params(
            {
                "generator": "reference-population",
                "training_rows": TRAINING_ROWS,
                "training_seed": TRAINING_SEED,
                "holdout_rows": HOLDOUT_ROWS,
                "holdout_seed": HOLDOUT_SEED,
                "features": ",".join(FEATURES),
                "algorithm": "LogisticRegression",
            }
        )
        mlflow.log_metrics(metrics)
        mlflow.set_tags({"developer": DEVELOPER, "training_population": TRAINING_POPULATION})
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            pyfunc_predict_fn="predict_proba",
            signature=signature,
            input_example=example,
            registered_model_name=name,
            pip_requirements=[f"{package}=={installed_version(package)}" for package in RUNTIME_PACKAGES],
        )
    version = str(info.registered_model_version)
    client.set_registered_model_alias(name, alias, version)
    client.update_registered_model(
        name,
        description=(
            f"{INTENDED_USE}. Inputs: {', '.join(FEATURES)}; output: [P(no diabetes), P(diabetes)]. "
            f"Developer: {DEVELOPER}. Trained on the synthetic {TRAINING_POPULATION} population; "
            "not validated on South-East Asian populations."
        ),
    )
    tags = {
        "developer": DEVELOPER,
        "training_population": TRAINING_POPULATION,
        "intended_use": INTENDED_USE,
        "label": LABEL,
        "features": ",".join(FEATURES),
    }
    for key, value in tags.items():
        client.set_registered_model_tag(name, key, value)
        client.set_model_version_tag(name, version, key, value)
    client.update_model_version(
        name,
        version,
        description=f"Logistic regression; reference hold-out AUROC {metrics['holdout_auroc']:.3f}.",
    )
    logger.info("registered %s version %s (%s)", name, version, metrics)
    return uri


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train and register the sample diabetes-risk candidate.")
    parser.add_argument("--name", default=MODEL_NAME, help="registered model name")
    parser.add_argument("--alias", default=MODEL_ALIAS, help="alias pointing at the new version")
    parser.add_argument("--force", action="store_true", help="train a new version even if the alias exists")
    arguments = parser.parse_args(argv)
    print(ensure_candidate(name=arguments.name, alias=arguments.alias, force=arguments.force))
    return 0


if __name__ == "__main__":
    sys.exit(main())
