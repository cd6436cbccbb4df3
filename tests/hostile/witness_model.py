"""A well-behaved model for the bystander sandbox (MLflow "models from code").

It scores deterministically and counts the ``predict`` calls it served, returning the count
with every row: a test that knows how many requests it sent itself can tell whether anyone
else (a hostile model in another sandbox) got a request through.
"""

from __future__ import annotations

import threading
from typing import Any

import mlflow
import numpy as np
import pandas as pd


def risk_score(frame: pd.DataFrame) -> np.ndarray:
    z = (
        (frame["bmi"].astype(float) - 27.0) / 4.0
        + (frame["age"].astype(float) - 55.0) / 12.0
        + 0.5 * frame["smoking"].astype(float)
        + 0.9 * frame["family_history"].astype(float)
    )
    return np.asarray(1.0 / (1.0 + np.exp(-z)))


class WitnessModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        self.served = 0
        self.lock = threading.Lock()

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        with self.lock:
            self.served += 1
            served = self.served
        return pd.DataFrame({"served": [served] * len(model_input), "score": risk_score(model_input)})


mlflow.models.set_model(WitnessModel())
