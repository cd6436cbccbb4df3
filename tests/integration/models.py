"""Small real MLflow models for integration tests (trained here, in a second)."""

from __future__ import annotations

from pathlib import Path


def tiny_model(path: Path) -> Path:
    """Two features (a, b) whose label follows a: the conformance suite's model."""
    from orchestrator.backends.conformance import conformance_model

    return conformance_model(path)


def candidate_model(path: Path, rows: int = 4000, seed: int = 3) -> Path:
    """A diabetes-risk model over the generator's columns, trained on the reference population."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from orchestrator.data.synthetic import generate_reference_population

    frame = generate_reference_population(rows, seed)
    features = ["age", "sex", "bmi", "systolic_bp", "smoking", "family_history"]
    numeric = [f for f in features if f != "sex"]
    pipeline = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["sex"]), (StandardScaler(), numeric)),
        LogisticRegression(max_iter=500),
    ).fit(frame[features], frame["diabetes"])
    signature = infer_signature(frame[features].head(), pipeline.predict_proba(frame[features].head()))
    mlflow.sklearn.save_model(pipeline, str(path), pyfunc_predict_fn="predict_proba", signature=signature)
    return path
