"""A sponsor's own data for tests: a chronic-kidney-disease progression cohort.

Nothing in it matches the synthetic SEA population: the identifier is a hospital number
(``patient_ref``), gender is coded M/F, regions are Thai health-region codes, the measurements
(eGFR, HbA1c, systolic pressure, albumin-creatinine ratio) are others, and so is the label
(``ckd_progression``). The development cohort is healthier than the trial cohort (higher eGFR,
lower HbA1c), so drift between the two is there to be found.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

LABEL = "ckd_progression"
ID_COLUMN = "patient_ref"
SENSITIVE = ["gender", "region"]
FEATURES = ["age", "gender", "egfr", "hba1c", "sbp"]
REGIONS = ["BKK", "CEN", "NE", "NOR", "SOU"]

CONTRACT = """\
# The sponsor's data contract for its CKD progression cohort (same format as the built-in suites).
schema: regsandbox/data-contract/v1
name: ckd-progression-cohort
description: Adults with type 2 diabetes followed for CKD progression, one row per patient.
required_columns: ["{case_id}", "{label}", age, gender, region, egfr, hba1c, sbp]
optional_columns: [uacr]
subgroups:
  min_rows: 30
  severity: advisory
  description: enough patients per group for the group's own metrics
expectations:
  - {type: expect_column_values_to_be_unique, column: "{case_id}", severity: blocking,
     description: hospital numbers are unique}
  - {type: expect_column_values_to_match_regex, column: "{case_id}", kwargs: {regex: "^HN-[0-9]+$"},
     severity: blocking, description: hospital numbers look like HN-<digits>}
  - {type: expect_column_values_to_be_between, column: egfr, kwargs: {min_value: 5, max_value: 150},
     severity: blocking, description: eGFR 5-150 mL/min/1.73m2}
  - {type: expect_column_values_to_be_between, column: hba1c, kwargs: {min_value: 4, max_value: 15},
     severity: blocking, description: HbA1c 4-15 % (NGSP units)}
  - {type: expect_column_values_to_be_in_set, column: gender, kwargs: {value_set: [M, F]},
     severity: blocking, description: gender coded M or F}
  - {type: expect_column_values_to_be_in_set, column: region, kwargs: {value_set: [BKK, CEN, NE, NOR, SOU]},
     severity: blocking, description: region is a health-region code}
  - {type: expect_column_values_to_be_in_set, column: "{label}", kwargs: {value_set: [0, 1]},
     severity: blocking, description: progression is 0 or 1}
each_feature:
  - {type: expect_column_unique_value_count_to_be_between, kwargs: {min_value: 2}, severity: blocking,
     description: "{column} varies"}
"""


def ckd_cohort(rows: int, seed: int, development: bool = False) -> pd.DataFrame:
    """``rows`` patients; the development cohort is the healthier population the model was fitted on."""
    rng = np.random.default_rng(seed)
    age = rng.integers(30, 86, rows)
    shift = 0.0 if development else 1.0
    egfr = np.clip(rng.normal(82 - 0.6 * (age - 50) - 14 * shift, 17), 8, 140).round(1)
    hba1c = np.clip(rng.normal(6.6 + 0.9 * shift, 1.1, rows), 4.2, 14).round(1)
    sbp = np.clip(rng.normal(130 + 0.3 * (age - 50), 16), 90, 220).round()
    logit = -1.3 - 0.05 * (egfr - 60) + 0.45 * (hba1c - 7) + 0.02 * (sbp - 130)
    progression = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    start = 10_000 if development else 50_000
    return pd.DataFrame(
        {
            ID_COLUMN: [f"HN-{start + i}" for i in range(rows)],
            "age": age,
            "gender": rng.choice(["M", "F"], rows),
            "region": rng.choice(REGIONS, rows, p=[0.3, 0.2, 0.25, 0.15, 0.1]),
            "egfr": egfr,
            "hba1c": hba1c,
            "sbp": sbp,
            "uacr": np.exp(rng.normal(3.0 + 0.6 * shift, 1.0, rows)).round(1),
            LABEL: progression,
        }
    )


def write_csv(frame: pd.DataFrame, path: Path) -> str:
    """Write ``frame`` as CSV at ``path``; return its SHA-256 (what the spec pins)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sponsor_spec(
    model_uri: str, data: dict[str, Any], jurisdictions: list[str] | None = None
) -> dict[str, Any]:
    """A trial spec (as YAML data) for the sponsor's CKD model; ``data`` is the spec's data section."""
    return {
        "name": "ckd-progression-risk",
        "sponsor": "siam-renal-ai",
        "intended_use": "Flag adults with type 2 diabetes at risk of CKD progression within two years",
        "risk_class": "C",
        "model": {"uri": model_uri},
        "data": {"label": LABEL, "sensitive_attributes": SENSITIVE, "id_column": ID_COLUMN, **data},
        "jurisdictions": jurisdictions or ["TH", "SG"],
        "workload": {"min_group_size": 30, "batch_size": 40},
    }


def ckd_model(path: Path, development: pd.DataFrame) -> Path:
    """The sponsor's model: a logistic regression on its own columns, saved as an MLflow model."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [f for f in FEATURES if f != "gender"]
    pipeline = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["gender"]), (StandardScaler(), numeric)),
        LogisticRegression(max_iter=500),
    ).fit(development[FEATURES], development[LABEL])
    head = development[FEATURES].head()
    signature = infer_signature(head, pipeline.predict_proba(head))
    mlflow.sklearn.save_model(pipeline, str(path), pyfunc_predict_fn="predict_proba", signature=signature)
    return path
