"""The developer gateway: token checks, path allow-list, forwarding and traffic capture.

The upstream is a real HTTP server on loopback standing in for the sandboxed model server.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from orchestrator.gateway import CASE_HEADER, Gateway, new_token
from orchestrator.records import TrafficRecord


class _Model(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        rows = body["dataframe_split"]["data"]
        self._reply({"predictions": [[0.3, 0.7] for _ in rows]})

    def do_GET(self) -> None:  # noqa: N802
        self._reply({"status": "ok"})

    def _reply(self, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Model)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _gateway(upstream: str, records: list[TrafficRecord]) -> tuple[Gateway, str, str]:
    dev, dev_hash = new_token()
    ev, ev_hash = new_token()
    gateway = Gateway(
        "t-gw",
        upstream,
        ["/invocations", "/health"],
        {dev_hash: "developer", ev_hash: "evaluation"},
        records.append,
    )
    gateway.start()
    return gateway, dev, ev


def test_tokens_paths_and_capture(upstream: str) -> None:
    records: list[TrafficRecord] = []
    gateway, dev, ev = _gateway(upstream, records)
    body = {"dataframe_split": {"columns": ["a"], "data": [[1], [2]]}}
    try:
        assert httpx.post(gateway.url + "/invocations", json=body).status_code == 401
        bad = httpx.post(gateway.url + "/invocations", json=body, headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        hidden = httpx.get(gateway.url + "/admin", headers={"Authorization": f"Bearer {dev}"})
        assert hidden.status_code == 404
        ok = httpx.post(gateway.url + "/invocations", json=body, headers={"Authorization": f"Bearer {dev}"})
        assert ok.status_code == 200 and ok.json() == {"predictions": [[0.3, 0.7], [0.3, 0.7]]}
        evaluation = httpx.post(
            gateway.url + "/invocations",
            json=body,
            headers={"Authorization": f"Bearer {ev}", CASE_HEADER: "c1,c2"},
        )
        assert evaluation.status_code == 200
    finally:
        gateway.stop()
    # Refused requests never reach the model and are not traffic of the trial.
    assert [r.origin for r in records] == ["developer", "evaluation"]
    developer, evaluated = records
    assert developer.case_ids is None and developer.request == body and developer.status == 200
    assert evaluated.case_ids == ["c1", "c2"] and evaluated.response["predictions"][1] == [0.3, 0.7]
    assert evaluated.latency_ms > 0 and evaluated.trial_id == "t-gw"


def test_developer_cannot_claim_evaluation_cases(upstream: str) -> None:
    records: list[TrafficRecord] = []
    gateway, dev, _ = _gateway(upstream, records)
    try:
        httpx.post(
            gateway.url + "/invocations",
            json={"dataframe_split": {"columns": ["a"], "data": [[1]]}},
            headers={"Authorization": f"Bearer {dev}", CASE_HEADER: "c1"},
        )
    finally:
        gateway.stop()
    assert records[0].case_ids is None


def test_model_down_is_recorded_as_502() -> None:
    records: list[TrafficRecord] = []
    gateway, dev, _ = _gateway("http://127.0.0.1:9", records)
    try:
        response = httpx.get(gateway.url + "/health", headers={"Authorization": f"Bearer {dev}"})
    finally:
        gateway.stop()
    assert response.status_code == 502
    assert records[0].status == 502 and records[0].error and "unreachable" in records[0].error
