"""The backend conformance suite (orchestrator.backends.conformance) on a real cluster, plus what
only Kubernetes shows: the namespace's policy, quota and limits, the pod's security context read
back from the API server, and quota refusing what exceeds the spec."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from orchestrator.backends import k8s_manifests as m
from orchestrator.backends.conformance import CHECKS, RESOURCES, Conformance, run_check
from orchestrator.backends.kubernetes import KubernetesBackend

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def conformance(kube: KubernetesBackend, tiny_model_dir: Path, platform_home: Path) -> Iterator[Conformance]:
    c = Conformance(kube, tiny_model_dir, platform_home, prefix="t-k8s").open()
    try:
        yield c
    finally:
        c.close()


@pytest.mark.parametrize("check", list(CHECKS))
def test_conformance(check: str, conformance: Conformance) -> None:
    result = run_check(conformance, check)
    assert result.passed, result.detail


def test_namespace_objects_and_security_context(kube: KubernetesBackend, conformance: Conformance) -> None:
    sandbox, _ = conformance.live()
    namespace = sandbox.details["namespace"]
    ns = kube.core.read_namespace(namespace)
    assert ns.metadata.labels["regsandbox.trial_id"] == sandbox.trial_id
    policy = client.NetworkingV1Api(kube.api).read_namespaced_network_policy("sandbox-isolation", namespace)
    assert policy.spec.policy_types == ["Ingress", "Egress"] and not policy.spec.egress
    peers = policy.spec.ingress[0].var_from
    assert peers[0].pod_selector.match_labels == kube.settings.kube_gateway_labels
    quota = kube.core.read_namespaced_resource_quota("sandbox-quota", namespace)
    assert quota.spec.hard["limits.memory"] == f"{RESOURCES.memory_mb}Mi"
    assert quota.spec.hard["limits.cpu"] == "1"  # 1000m, normalised by the API server
    limits = kube.core.read_namespaced_limit_range("sandbox-limits", namespace).spec.limits[0]
    assert limits.max["memory"] == f"{RESOURCES.memory_mb}Mi"
    pod = kube.core.list_namespaced_pod(namespace, label_selector="regsandbox.role=model").items[0]
    spec = pod.spec
    assert spec.automount_service_account_token is False
    assert spec.security_context.run_as_non_root and spec.security_context.run_as_user == 10001
    assert spec.security_context.seccomp_profile.type == "RuntimeDefault"
    for container in [*spec.containers, *spec.init_containers]:
        ctx = container.security_context
        assert ctx.read_only_root_filesystem and ctx.allow_privilege_escalation is False
        assert ctx.capabilities.drop == ["ALL"]
    service = kube.core.read_namespaced_service("model-server", namespace)
    assert [(p.port, p.protocol) for p in service.spec.ports] == [(8080, "TCP")] or all(
        p.protocol == "TCP" for p in service.spec.ports
    )
    controls = kube.isolation_controls(sandbox)
    assert all(c.applied for c in controls), [c for c in controls if not c.applied]


def test_quota_refuses_a_pod_beyond_the_spec(kube: KubernetesBackend, conformance: Conformance) -> None:
    sandbox, _ = conformance.live()
    greedy = sandbox.resources.model_copy(update={"memory_mb": sandbox.resources.memory_mb * 4})
    pod = m.probe_pod("greedy", sandbox.trial_id, "pass", "{}", greedy, kube.settings)
    with pytest.raises(ApiException) as refused:
        kube.core.create_namespaced_pod(sandbox.details["namespace"], pod)
    assert (
        refused.value.status == 403
        and "exceeded quota" in (refused.value.body or "")
        or ("maximum memory usage" in (refused.value.body or ""))
    )
