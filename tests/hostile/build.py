"""Save the hostile and witness models as MLflow model directories ("models from code")."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FEATURES = {
    "age": "long",
    "sex": "string",
    "bmi": "double",
    "systolic_bp": "double",
    "smoking": "long",
    "family_history": "long",
}
# Given explicitly: left to infer them, MLflow would load the model on the host to see what
# it imports, and the hostile model must only ever be loaded inside a sandbox.
PIP_REQUIREMENTS = ["mlflow-skinny", "pandas", "numpy"]


def _signature():  # type: ignore[no-untyped-def]
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    return ModelSignature(inputs=Schema([ColSpec(kind, name) for name, kind in FEATURES.items()]))


def _save(path: Path, code: str, config: dict[str, Any] | None) -> Path:
    import mlflow.pyfunc

    with warnings.catch_warnings():
        # No input example on purpose: with one, MLflow would run the model here to check it.
        warnings.filterwarnings("ignore", message=".*input example was not provided")
        mlflow.pyfunc.save_model(
            path=str(path),
            python_model=str(HERE / code),
            model_config=config,
            signature=_signature(),
            pip_requirements=PIP_REQUIREMENTS,
        )
    return path


def save_hostile_model(path: Path, attack: str, **config: Any) -> Path:
    """A candidate whose code runs ``attack`` once served in a sandbox (see hostile_model.py)."""
    return _save(path, "hostile_model.py", {"attack": attack, **config})


def save_witness_model(path: Path) -> Path:
    return _save(path, "witness_model.py", None)
