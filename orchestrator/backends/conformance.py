"""The ``SandboxBackend`` contract as runnable checks, for any backend in the registry.

A backend author runs :func:`run_conformance` against a live engine (the project's own tests do
so for docker and process, and for a fake in the unit tests): provision a labelled sandbox,
attest it honestly, deploy a real MLflow model, score through the endpoint, observe it, tear it
down (twice) and sweep an orphan left by a process that died. Each check returns a result rather
than stopping the run, and a backend may declare known failures with a reason, which are
reported as such instead of hiding.

Every trial id starts with the given prefix, and the orphan sweep only considers those ids, so a
shared engine's other sandboxes are never touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from orchestrator.backends.attestation import ALL_PROBES, Attestation
from orchestrator.backends.base import Endpoint, Sandbox, SandboxBackend
from orchestrator.spec import Resources
from orchestrator.templates import load_template

# Enough for the MLflow server under the process backend's RLIMIT_DATA, which counts reserved as
# well as resident memory (it needs about 320 MiB), and well inside Docker's cgroup limit.
RESOURCES = Resources(cpus=1.0, memory_mb=512)
ROWS = {"columns": ["a", "b"], "data": [[0.1, 0.2], [0.9, 0.5]]}

# Provisions and deploys, then exits without teardown: an orphan, as after a crash.
_ORPHAN = """
import sys
from pathlib import Path
from orchestrator.backends import get_backend
from orchestrator.settings import Settings
from orchestrator.spec import Resources
from orchestrator.templates import load_template
backend = get_backend(sys.argv[1], Settings(home=Path(sys.argv[2])))
sandbox = backend.provision(sys.argv[3], Resources(cpus=1.0, memory_mb=512))
backend.deploy(sandbox, load_template("mlflow-pyfunc"), Path(sys.argv[4]))
"""


class CheckResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    check: str
    passed: bool
    detail: str = ""
    known_failure: str | None = None


def conformance_model(path: Path) -> Path:
    """A small real MLflow model over columns a and b whose label follows a (trained in a second)."""
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.random(200), "b": rng.random(200)})
    labels = (frame["a"] + 0.2 * rng.random(200) > 0.6).astype(int)
    model = LogisticRegression().fit(frame, labels)
    mlflow.sklearn.save_model(model, str(path), pyfunc_predict_fn="predict_proba")
    return path


@dataclass
class Conformance:
    """One live sandbox, attested then serving, shared by the checks; ``close`` removes it."""

    backend: SandboxBackend
    model_dir: Path
    home: Path
    prefix: str = "t-conf"
    sandbox: Sandbox | None = None
    attestation: Attestation | None = None
    endpoint: Endpoint | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def trial(self, suffix: str) -> str:
        return f"{self.prefix}-{self.backend.name}-{suffix}"

    def open(self) -> Conformance:
        trial_id = self.trial("live")
        self.backend.teardown(trial_id)  # what an interrupted earlier run may have left
        self.sandbox = self.backend.provision(trial_id, RESOURCES)
        self.attestation = self.backend.attest(self.sandbox)
        self.endpoint = self.backend.deploy(self.sandbox, load_template("mlflow-pyfunc"), self.model_dir)
        return self

    def close(self) -> None:
        self.backend.teardown(self.trial("live"))

    def live(self) -> tuple[Sandbox, Endpoint]:
        if self.sandbox is None or self.endpoint is None:
            raise AssertionError("the live sandbox was not opened (Conformance.open)")
        return self.sandbox, self.endpoint


def _check(condition: object, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def check_provision_labels(c: Conformance) -> None:
    sandbox, _ = c.live()
    _check(sandbox.backend == c.backend.name, f"sandbox names backend {sandbox.backend!r}")
    _check(sandbox.resources == RESOURCES, "sandbox does not carry the resources asked for")
    _check(sandbox.labels.get("regsandbox.trial_id") == sandbox.trial_id, "no trial-id label")
    _check(sandbox.labels.get("regsandbox.owner_pid") == str(os.getpid()), "no owner-pid label")


def check_attestation_honest(c: Conformance) -> None:
    attestation = c.attestation
    _check(attestation is not None and attestation.backend == c.backend.name, "no attestation")
    assert attestation is not None  # noqa: S101 - narrowed for the type checker
    _check([p.probe for p in attestation.probes] == list(ALL_PROBES), "probes missing or out of order")
    for probe in attestation.probes:
        _check(probe.required == (probe.probe in c.backend.required_probes), f"{probe.probe}: claim mismatch")
        if probe.required:
            _check(probe.passed, f"{probe.probe} failed: {probe.detail}")
        else:
            _check(not probe.passed and "not provided" in probe.detail, f"{probe.probe} claimed unprovided")
    _check(attestation.passed, "attestation did not pass")


def check_deploy_healthy(c: Conformance) -> None:
    _, endpoint = c.live()
    _check(httpx.get(endpoint.url + endpoint.health_path, timeout=5).status_code == 200, "not healthy")
    _check(0 <= endpoint.ready_s < 120, f"ready_s {endpoint.ready_s} out of range")


def check_endpoint_scores(c: Conformance) -> None:
    _, endpoint = c.live()
    reply = httpx.post(endpoint.url + "/invocations", json={"dataframe_split": ROWS}, timeout=30)
    _check(reply.status_code == 200, f"scoring answered {reply.status_code}: {reply.text[:300]}")
    predictions = reply.json()["predictions"]
    _check(len(predictions) == 2 and all(abs(sum(p) - 1.0) < 1e-6 for p in predictions), "bad predictions")
    _check(predictions[0][1] < 0.5 < predictions[1][1], "the label does not follow column a")


def check_stats_and_logs(c: Conformance) -> None:
    sandbox, _ = c.live()
    stats = c.backend.stats(sandbox)
    _check(stats.running and not stats.oom_killed, f"not running: {stats}")
    _check(stats.memory_bytes is not None and stats.memory_bytes > 0, "no memory figure")
    _check(stats.memory_limit_bytes in (None, RESOURCES.memory_mb * 2**20), "memory limit misreported")
    _check(stats.pids is not None and stats.pids >= 1, "no process count")
    _check(isinstance(c.backend.logs(sandbox), str), "logs are not text")


def check_isolation_controls_described(c: Conformance) -> None:
    sandbox, _ = c.live()
    controls = c.backend.isolation_controls(sandbox)
    _check(controls and all(x.detail for x in controls), "controls missing or without detail")


def check_processes_lines(c: Conformance) -> None:
    sandbox, _ = c.live()
    lines = c.backend.processes(sandbox)
    _check(all(len(line.split(None, 4)) == 5 for line in lines), f"bad process lines: {lines[:3]}")


def check_teardown_idempotent(c: Conformance) -> None:
    trial_id = c.trial("teardown")
    c.backend.teardown(trial_id)
    sandbox = c.backend.provision(trial_id, RESOURCES)
    c.backend.deploy(sandbox, load_template("mlflow-pyfunc"), c.model_dir)
    first = c.backend.teardown(trial_id)
    _check(first.verified and first.removed, f"first teardown: {first}")
    second = c.backend.teardown(trial_id)
    _check(second.verified and second.removed == [], f"second teardown: {second}")
    # Not "the endpoint stops answering": a freed address or port may already be someone else's.
    _check(trial_id not in c.backend._owned() and c.backend._remaining(trial_id) == [], "objects remain")


def check_reap_orphans(c: Conformance) -> None:
    """An orphan whose process died is swept; a sandbox whose owner lives is left alone."""
    orphan, owned = c.trial("orphan"), c.trial("owned")
    for trial_id in (orphan, owned):
        c.backend.teardown(trial_id)
    made = subprocess.run(
        [sys.executable, "-c", _ORPHAN, c.backend.name, str(c.home), orphan, str(c.model_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    _check(made.returncode == 0, f"could not make an orphan: {made.stderr[-2000:]}")
    c.backend.provision(owned, RESOURCES)
    everything = c.backend._owned
    try:
        _check(orphan in everything() and owned in everything(), "orphan or owned sandbox not found")
        reaped = {r.trial_id: r for r in c.backend.reap(prefix=f"{c.prefix}-")}
        _check(set(reaped) == {orphan}, f"reaped {sorted(reaped)}, expected only {orphan}")
        _check(reaped[orphan].verified and reaped[orphan].removed, f"orphan teardown: {reaped[orphan]}")
        alive = everything()
        _check(orphan not in alive and owned in alive, "the sweep took the wrong sandboxes")
        _check(c.sandbox is None or c.sandbox.trial_id in alive, "the sweep took the live sandbox")
    finally:
        c.backend.teardown(owned)
        c.backend.teardown(orphan)


CHECKS: Mapping[str, Callable[[Conformance], None]] = {
    "provision-labels": check_provision_labels,
    "attestation-honest": check_attestation_honest,
    "deploy-healthy": check_deploy_healthy,
    "endpoint-scores": check_endpoint_scores,
    "stats-and-logs": check_stats_and_logs,
    "isolation-controls-described": check_isolation_controls_described,
    "processes-lines": check_processes_lines,
    "teardown-idempotent": check_teardown_idempotent,
    "reap-orphans": check_reap_orphans,
}


def run_check(c: Conformance, name: str, known_failures: Mapping[str, str] | None = None) -> CheckResult:
    known = (known_failures or {}).get(name)
    try:
        CHECKS[name](c)
    except Exception as exc:  # a check's failure is its result, the run goes on
        return CheckResult(
            check=name, passed=False, detail=f"{type(exc).__name__}: {exc}", known_failure=known
        )
    return CheckResult(check=name, passed=True, known_failure=known)


def run_conformance(
    backend: SandboxBackend,
    model_dir: Path,
    home: Path,
    known_failures: Mapping[str, str] | None = None,
    only: Iterable[str] | None = None,
    prefix: str = "t-conf",
) -> list[CheckResult]:
    """Run every check (or ``only`` those) against ``backend``; one result per check."""
    c = Conformance(backend, model_dir, home, prefix)
    try:
        c.open()
    except Exception as exc:  # nothing can be checked without a live sandbox
        c.close()
        return [CheckResult(check="open", passed=False, detail=f"{type(exc).__name__}: {exc}")]
    try:
        return [run_check(c, name, known_failures) for name in (only or CHECKS)]
    finally:
        c.close()
