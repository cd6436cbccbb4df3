"""A candidate (MLflow "models from code") that answers some requests with errors.

``fail_tenths`` (0-10) of the batches fail, chosen by the batch's content so that a rerun fails
the same ones; the failures raise one of two distinct errors, so that a report can be checked
for quoting each with its own count. The other batches get a plausible risk score.
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import pandas as pd

ERRORS = ("feature store timed out", "cannot score: bmi outside the model's range")


def failure_for(frame: pd.DataFrame, fail_tenths: int) -> str | None:
    """Which error (if any) the model raises for this batch; the test recomputes it the same way."""
    key = int(frame["age"].astype(int).sum() * 7 + frame["systolic_bp"].astype(float).round().sum())
    if key % 10 >= fail_tenths:
        return None
    return ERRORS[key % 2]


class FlakyModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        self.fail_tenths = int((context.model_config or {}).get("fail_tenths", 3))

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> np.ndarray:
        error = failure_for(model_input, self.fail_tenths)
        if error is not None:
            raise RuntimeError(error)
        z = (model_input["bmi"].astype(float) - 26.0) / 5.0 + (model_input["age"].astype(float) - 50.0) / 15.0
        return np.asarray(1.0 / (1.0 + np.exp(-z)))


mlflow.models.set_model(FlakyModel())
