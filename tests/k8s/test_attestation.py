"""Attestation on a cluster whose NetworkPolicy is not enforced: refused unless the operator accepts.

The local control plane has no network plugin: its pods have no route at all, so no packet leaves,
but the sandbox's NetworkPolicy is never what stops them. The backend proves a policy only when a
control pod without it gets out where the sandbox's pod does not; here neither does, and the
attestation says so instead of passing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orchestrator.backends.conformance import RESOURCES
from orchestrator.backends.kubernetes import KubernetesBackend
from orchestrator.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture
def strict(kube_settings: Settings) -> Iterator[KubernetesBackend]:
    backend = KubernetesBackend(
        kube_settings.model_copy(update={"kube_accept_unenforced_network_policy": False})
    )
    yield backend


def test_unproven_network_policy_fails_attestation(strict: KubernetesBackend) -> None:
    trial_id = "t-k8s-attest-strict"
    strict.teardown(trial_id)
    sandbox = strict.provision(trial_id, RESOURCES)
    try:
        attestation = strict.attest(sandbox)
        assert not attestation.passed
        failed = {p.probe: p for p in attestation.failures}
        assert set(failed) == {"no-egress"}, failed
        assert "NOT proven" in failed["no-egress"].detail
        assert "REGSANDBOX_KUBE_ACCEPT_UNENFORCED_NETWORK_POLICY" in failed["no-egress"].detail
        # Everything else the backend claims held inside the pod.
        held = {p.probe for p in attestation.probes if p.required and p.passed}
        assert held == set(strict.required_probes) - {"no-egress"}
        skipped = {p.probe for p in attestation.probes if not p.required}
        assert skipped == {"noexec-tmp", "pids-limit"}
        # The proof's control namespace carries the trial's label: teardown removes it with the rest.
        assert f"namespace {sandbox.details['namespace']}" in strict._remaining(trial_id)
    finally:
        assert strict.teardown(trial_id).verified


def test_accepted_unenforced_policy_passes_and_says_so(kube: KubernetesBackend) -> None:
    trial_id = "t-k8s-attest-accepted"
    kube.teardown(trial_id)
    sandbox = kube.provision(trial_id, RESOURCES)
    try:
        attestation = kube.attest(sandbox)
        assert attestation.passed, attestation.failures
        egress = next(p for p in attestation.probes if p.probe == "no-egress")
        assert "NOT proven" in egress.detail and "accepted by the operator" in egress.detail
    finally:
        assert kube.teardown(trial_id).verified
