"""Scoring server for an MLflow pyfunc model mounted read-only at $MODEL_DIR.

Speaks the MLflow scoring protocol: ``POST /invocations`` with exactly one of
``dataframe_split``, ``dataframe_records``, ``instances`` or ``inputs``, answering
``{"predictions": [...]}``; ``GET /health`` and ``GET /ping`` answer once the model loaded.
"""

from __future__ import annotations

import os
import time
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

INPUT_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")

started = time.monotonic()
model = mlflow.pyfunc.load_model(os.environ.get("MODEL_DIR", "/model"))
loaded_s = time.monotonic() - started
app = FastAPI(title="regsandbox mlflow-pyfunc server", docs_url=None, redoc_url=None)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, pd.DataFrame):
        return value.to_dict(orient="records")
    if isinstance(value, pd.Series | np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def parse_input(body: dict[str, Any]) -> Any:
    given = [key for key in INPUT_KEYS if key in body]
    if len(given) != 1:
        raise HTTPException(400, f"give exactly one of {', '.join(INPUT_KEYS)}")
    key = given[0]
    if key == "dataframe_split":
        split = body[key]
        return pd.DataFrame(split["data"], columns=split.get("columns"), index=split.get("index"))
    if key == "dataframe_records":
        return pd.DataFrame(body[key])
    data = body[key]
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return pd.DataFrame(data)
    return data


@app.get("/health")
@app.get("/ping")
def health() -> dict[str, Any]:
    return {"status": "ok", "model_load_s": round(loaded_s, 3)}


@app.get("/version")
def version() -> dict[str, str]:
    return {"mlflow": mlflow.__version__}


@app.post("/invocations")
async def invocations(request: Request) -> JSONResponse:
    try:
        body = await request.json()
    except ValueError as exc:
        raise HTTPException(400, "body is not JSON") from exc
    if not isinstance(body, dict):
        raise HTTPException(400, "body must be a JSON object")
    try:
        data = parse_input(body)
    except (KeyError, TypeError, ValueError) as exc:
        raise HTTPException(400, f"malformed input: {exc}") from exc
    try:
        predictions = model.predict(data, params=body.get("params"))
    except Exception as exc:  # the model's own failure is reported, not hidden
        return JSONResponse({"error_code": "MODEL_ERROR", "message": str(exc)[:2000]}, status_code=500)
    return JSONResponse({"predictions": to_jsonable(predictions)})


if __name__ == "__main__":
    # 0.0.0.0 inside a container (its network is the isolation); a backend without one sets HOST.
    host = os.environ.get("HOST", "0.0.0.0")  # noqa: S104
    uvicorn.run(app, host=host, port=int(os.environ.get("PORT", "8080")), log_level="warning")
