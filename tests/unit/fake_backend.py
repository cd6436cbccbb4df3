"""A FAKE isolation backend, for testing the lifecycle's logic fast (no Docker, no isolation).

It keeps its "sandboxes" in memory and "deploys" by starting a small HTTP scoring server in a
thread on 127.0.0.1 that answers the MLflow scoring protocol with a fixed rule (a score from
BMI). It isolates nothing and claims only the probes its fake probe output reports; the real
backends are tested against the conformance suite with a real engine elsewhere.
"""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

from orchestrator.backends import Endpoint, IsolationControl, ResourceStats, Sandbox, SandboxBackend
from orchestrator.settings import Settings
from orchestrator.spec import Resources
from orchestrator.templates import Template

FAKE_PROBES = frozenset({"read-only-root", "non-root"})


class _Scorer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server hook's name
        self._answer(200, {"status": "ok"})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        split = body["dataframe_split"]
        # Risk rises with BMI; without a BMI column (the conformance model's rows), with column a.
        column, centre, scale = ("bmi", 27.0, 3.0) if "bmi" in split["columns"] else ("a", 0.5, 0.1)
        at = split["columns"].index(column)
        risks = (1 / (1 + math.exp(-(row[at] - centre) / scale)) for row in split["data"])
        scores = [[1 - p, p] for p in risks]
        self._answer(200, {"predictions": scores})

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


class FakeBackend(SandboxBackend):
    """FAKE: in-memory sandboxes and a threaded scoring server; no isolation at all."""

    name: ClassVar[str] = "fake"
    isolation_level: ClassVar[str] = "none (fake backend for tests)"
    required_probes: ClassVar[frozenset[str]] = FAKE_PROBES
    sandboxes: ClassVar[dict[str, dict[str, Any]]] = {}
    probes_pass: ClassVar[bool] = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _provision(self, trial_id: str, resources: Resources, labels: dict[str, str]) -> Sandbox:
        self.sandboxes[trial_id] = {"labels": labels, "server": None}
        return Sandbox(trial_id=trial_id, backend=self.name, resources=resources, labels=labels)

    def _deploy(self, sandbox: Sandbox, template: Template, model_dir: Path) -> Endpoint:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Scorer)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.sandboxes[sandbox.trial_id]["server"] = server
        url = f"http://127.0.0.1:{server.server_address[1]}"
        return Endpoint(url=url, health_path=template.health_path, ready_s=0.0, image="fake")

    def _run_probes(self, sandbox: Sandbox, args_json: str) -> str:
        return json.dumps([{"probe": p, "passed": self.probes_pass, "detail": "fake"} for p in FAKE_PROBES])

    def stats(self, sandbox: Sandbox) -> ResourceStats:
        running = sandbox.trial_id in self.sandboxes
        return ResourceStats(memory_bytes=64 * 2**20, cpu_seconds=0.1, pids=3, running=running)

    def logs(self, sandbox: Sandbox, tail: int = 200) -> str:
        return "fake model server\n"

    def isolation_controls(self, sandbox: Sandbox) -> list[IsolationControl]:
        return [IsolationControl(control="fake read-back", applied=True, detail="fake")]

    def _teardown(self, trial_id: str) -> list[str]:
        found = self.sandboxes.pop(trial_id, None)
        if found is None:
            return []
        if found["server"] is not None:
            found["server"].shutdown()
            found["server"].server_close()
        return [f"fake sandbox {trial_id}"]

    def _remaining(self, trial_id: str) -> list[str]:
        return [f"fake sandbox {trial_id}"] if trial_id in self.sandboxes else []

    def _owned(self) -> dict[str, dict[str, str]]:
        return {trial_id: found["labels"] for trial_id, found in self.sandboxes.items()}
