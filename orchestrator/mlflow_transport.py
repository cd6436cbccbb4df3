"""How the metric streamer reaches MLflow: one send, one read-back, and what makes a point itself.

Two transports behind one protocol: REST to a tracking server (a single request per call, so
that no hidden retry duplicates a stored batch) and ``MlflowClient`` for stores opened directly.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Protocol

from monitors.base import MetricPoint

if TYPE_CHECKING:
    from collections.abc import Callable

    from mlflow import MlflowClient

Identity = tuple[str, int, int, float | str]


def identity(point: MetricPoint) -> Identity:
    """What makes a stored metric value this point: MLflow's own key for a metric row, minus the run."""
    return (point.key, int(point.step), int(point.timestamp_ms), _parsed(point.value))


def _json_value(value: float) -> float | str:
    # MLflow's JSON (protobuf) form of non-finite doubles; plain JSON has no NaN or Infinity.
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


class Transport(Protocol):
    """How the streamer reaches a tracking store: send a batch, read back what is stored."""

    timeout_s: float

    def log(self, run_id: str, points: list[MetricPoint]) -> None: ...

    def stored(self, run_id: str, points: list[MetricPoint]) -> set[Identity]: ...


class ClientTransport:
    """Any store, through ``MlflowClient`` (SQL stores opened directly have no HTTP to tune)."""

    timeout_s = 0.0

    def __init__(self, client: MlflowClient) -> None:
        self._client = client

    def log(self, run_id: str, points: list[MetricPoint]) -> None:
        from mlflow.entities import Metric

        metrics = [Metric(p.key, p.value, p.timestamp_ms, p.step) for p in points]
        self._client.log_batch(run_id, metrics=metrics, synchronous=True)

    def stored(self, run_id: str, points: list[MetricPoint]) -> set[Identity]:
        keys = {p.key for p in points}
        history = [m for key in keys for m in self._client.get_metric_history(run_id, key)]
        return {(m.key, int(m.step), int(m.timestamp), _parsed(m.value)) for m in history}


class RestTransport:
    """A tracking server over REST, one request per call: no hidden retries, a bounded wait.

    MLflow's client would retry a POST inside the call (duplicating a batch that was stored
    before the connection broke) and wait minutes while the server is down; the streamer
    retries itself, after reading back what was stored.
    """

    LOG_BATCH = "/api/2.0/mlflow/runs/log-batch"
    GET_HISTORY = "/api/2.0/mlflow/metrics/get-history"

    def __init__(self, host_creds: Callable[[], Any], timeout_s: float) -> None:
        self._creds = host_creds
        self.timeout_s = timeout_s

    def _call(self, endpoint: str, method: str, **kwargs: Any) -> Any:
        from mlflow.utils.rest_utils import http_request, verify_rest_response

        response = http_request(
            self._creds(), endpoint, method, max_retries=0, timeout=self.timeout_s, **kwargs
        )
        return verify_rest_response(response, endpoint).json()

    def log(self, run_id: str, points: list[MetricPoint]) -> None:
        metrics = [
            {"key": p.key, "value": _json_value(p.value), "timestamp": p.timestamp_ms, "step": p.step}
            for p in points
        ]
        self._call(self.LOG_BATCH, "POST", json={"run_id": run_id, "metrics": metrics})

    def stored(self, run_id: str, points: list[MetricPoint]) -> set[Identity]:
        found: set[Identity] = set()
        for key in {p.key for p in points}:
            params: dict[str, Any] = {"run_id": run_id, "metric_key": key}
            while True:
                page = self._call(self.GET_HISTORY, "GET", params=params)
                for m in page.get("metrics", []):
                    found.add((m["key"], int(m.get("step", 0)), int(m["timestamp"]), _parsed(m["value"])))
                if not page.get("next_page_token"):
                    break
                params["page_token"] = page["next_page_token"]
        return found


def _parsed(value: float | str) -> float | str:
    number = float(value)  # "NaN" and "Infinity" parse as well
    return number if math.isfinite(number) else str(number)


def transport_for(client: MlflowClient, timeout_s: float) -> Transport:
    """The REST transport for a tracking server, the client itself for anything else."""
    from mlflow.store.tracking.rest_store import RestStore

    # The client does not expose its store publicly; without it, fall back to the client's calls.
    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    if isinstance(store, RestStore):
        return RestTransport(store.get_host_creds, timeout_s)
    return ClientTransport(client)
