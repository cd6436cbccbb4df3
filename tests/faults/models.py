"""Save the fault tests' candidates as MLflow model directories ("models from code")."""

from __future__ import annotations

import warnings
from pathlib import Path

from tests.hostile.build import PIP_REQUIREMENTS, _signature

HERE = Path(__file__).resolve().parent


def save_flaky_model(path: Path, fail_tenths: int) -> Path:
    """A candidate that fails ``fail_tenths`` of ten batches with one of two errors."""
    import mlflow.pyfunc

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*input example was not provided")
        mlflow.pyfunc.save_model(
            path=str(path),
            python_model=str(HERE / "flaky_model.py"),
            model_config={"fail_tenths": fail_tenths},
            signature=_signature(),
            pip_requirements=PIP_REQUIREMENTS,
        )
    return path
