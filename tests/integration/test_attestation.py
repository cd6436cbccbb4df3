"""Isolation attestation: probes run inside the sandbox before deployment, and stop a weak one.

The weakened backends below are the real Docker backend with ONE protection switched off, the
way a misconfigured host or a regression would. The probes must notice, and the trial must end
before any model or data enters the sandbox, still with a report saying why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.backends import Sandbox, hostfirewall, register_backend
from orchestrator.backends.docker import DockerBackend
from orchestrator.reports import load_report
from orchestrator.run import run_trial
from orchestrator.settings import Settings, get_settings
from orchestrator.spec import Resources
from tests.integration.models import tiny_model
from tests.integration.test_trial_flow import small_spec

pytestmark = [pytest.mark.docker, pytest.mark.slow]


class WritableRootBackend(DockerBackend):
    """Forgets the read-only root filesystem."""

    def _hardening(self, sandbox: Sandbox) -> dict[str, Any]:
        return {**super()._hardening(sandbox), "read_only": False}


class NoHostFirewallBackend(DockerBackend):
    """Provisions the internal network but never installs the host firewall rules."""

    def _provision(self, trial_id: str, resources: Resources, labels: dict[str, str]) -> Sandbox:
        sandbox = super()._provision(trial_id, resources, labels)
        hostfirewall.unblock(trial_id)
        return sandbox


def test_healthy_sandbox_passes_every_probe(settings: Settings, docker_client) -> None:  # type: ignore[no-untyped-def]
    backend = DockerBackend(settings)
    sandbox = backend.provision("t-attest-ok", Resources(cpus=0.5, memory_mb=256))
    try:
        attestation = backend.attest(sandbox)
    finally:
        backend.teardown("t-attest-ok")
    assert attestation.passed, attestation.failures
    assert {p.probe for p in attestation.probes if p.required} >= {
        "no-egress",
        "no-dns",
        "no-host-access",
        "read-only-root",
        "noexec-tmp",
        "non-root",
        "no-capabilities",
        "no-new-privileges",
        "memory-limit",
        "pids-limit",
        "cpu-limit",
        "canary-untouched",
    }


@pytest.mark.parametrize(
    ("backend_class", "probe"),
    [(WritableRootBackend, "read-only-root"), (NoHostFirewallBackend, "no-host-access")],
)
def test_weakened_sandbox_stops_before_deployment(
    backend_class: type[DockerBackend],
    probe: str,
    settings: Settings,
    prefect_harness: None,  # type: ignore[no-untyped-def]
    docker_client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"docker-weak-{probe}"
    register_backend(name, backend_class)
    monkeypatch.setenv("REGSANDBOX_BACKEND", name)
    get_settings.cache_clear()
    spec = small_spec(tiny_model(tmp_path / "model"), rows=300)
    outcome = run_trial(spec)

    assert outcome.status == "failed"
    assert outcome.error and "IsolationError at attest" in outcome.error and probe in outcome.error
    assert outcome.teardown_verified
    report = load_report(outcome.report["json"])
    kinds = [e.kind for e in report.events]
    assert "attested" in kinds and "deployed" not in kinds  # the model never entered the sandbox
    assert report.isolation is not None and not report.isolation.verified
    failed = [c for c in report.isolation.controls if c.control == f"probe: {probe}"]
    assert failed and not failed[0].applied
    assert not docker_client.containers.list(
        all=True, filters={"label": f"regsandbox.trial_id={outcome.trial_id}"}
    )
