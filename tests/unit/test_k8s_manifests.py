"""Every object the kubernetes backend sends validates strictly against two current Kubernetes
versions' published schemas (kubernetes-validate, offline), and says what the design says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from kubernetes.client import ApiClient

from orchestrator.backends import k8s_manifests as m
from orchestrator.backends.kubernetes import KubernetesBackend
from orchestrator.backends.process import ProcessBackend
from orchestrator.errors import BackendError
from orchestrator.settings import Settings
from orchestrator.spec import Resources

VERSIONS = ("1.33", "1.37")
TRIAL = "t-manifests-0001"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("home"))


def _all(settings: Settings, resources: Resources) -> list[dict[str, Any]]:
    backend = KubernetesBackend(settings)
    objects = [
        *backend.manifests(TRIAL, resources, {"regsandbox.owner_host": "a-host-name-" * 8}),
        m.model_deployment(TRIAL, "regsandbox/mlflow-pyfunc:0123", 8080, "/ping", resources, settings),
        m.model_service(TRIAL, 8080),
        m.probe_pod("isolation-probe", TRIAL, "print('[]')", '{"skip": []}', resources, settings),
    ]
    return [ApiClient().sanitize_for_serialization(obj) for obj in objects]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("gpus", [0, 2])
def test_every_manifest_validates_strictly(settings: Settings, version: str, gpus: int) -> None:
    manifests = _all(settings, Resources(cpus=1.5, memory_mb=768, gpus=gpus))
    assert [d["kind"] for d in manifests] == [
        "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "Deployment", "Service", "Pod",
    ]  # fmt: skip
    for manifest in manifests:
        kubernetes_validate.validate(manifest, version, strict=True)


def test_a_misspelt_field_is_refused_by_the_strict_check(settings: Settings) -> None:
    service = _all(settings, Resources())[5]
    service["spec"]["prots"] = service["spec"].pop("ports")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, VERSIONS[-1], strict=True)


def test_policy_denies_egress_and_admits_only_the_gateway(settings: Settings) -> None:
    policy = _all(settings, Resources())[1]["spec"]
    assert policy["podSelector"] == {} and policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["egress"] == []
    (rule,) = policy["ingress"]
    (peer,) = rule["from"]  # one peer holding both selectors: gateway pods of the platform namespace
    assert peer["podSelector"]["matchLabels"] == settings.kube_gateway_labels
    assert peer["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": settings.kube_gateway_namespace
    }


def test_pods_are_restricted_and_sized_from_the_spec(settings: Settings) -> None:
    manifests = _all(settings, Resources(cpus=2, memory_mb=1024, gpus=1))
    quota, limits, deployment, service, probe = (manifests[i] for i in (2, 3, 4, 5, 6))
    assert (
        quota["spec"]["hard"]["limits.memory"] == "1024Mi" and quota["spec"]["hard"]["limits.cpu"] == "2000m"
    )
    assert quota["spec"]["hard"]["requests.nvidia.com/gpu"] == "1"
    assert limits["spec"]["limits"][0]["max"] == {"cpu": "2000m", "memory": "1024Mi"}
    assert [p["protocol"] for p in service["spec"]["ports"]] == ["TCP"]
    for pod in (deployment["spec"]["template"]["spec"], probe["spec"]):
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"] + pod.get("initContainers", []):
            ctx = container["securityContext"]
            assert ctx["readOnlyRootFilesystem"] and not ctx["allowPrivilegeEscalation"]
            assert ctx["capabilities"] == {"drop": ["ALL"]} and ctx["runAsNonRoot"]
    server = deployment["spec"]["template"]["spec"]["containers"][0]
    assert server["resources"]["limits"] == {"cpu": "2000m", "memory": "1024Mi", "nvidia.com/gpu": "1"}
    loader = deployment["spec"]["template"]["spec"]["initContainers"][0]
    assert "nvidia.com/gpu" not in loader["resources"]["limits"]  # no GPU held while unpacking
    mounts = {v["mountPath"]: v.get("readOnly", False) for v in server["volumeMounts"]}
    assert mounts["/model"] is True


def test_names_stay_within_the_63_character_limit() -> None:
    long_id = "t" + "-abcdefghij" * 6  # 61 characters, a valid trial id
    names = {m.namespace_name(long_id), m.namespace_name(long_id, "-ctl")}
    assert all(len(n) <= 63 for n in names) and len(names) == 2
    assert m.namespace_name("t-short") == "rs-t-short"


def test_only_a_gpu_scheduling_backend_accepts_gpus(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="cannot schedule GPUs"):
        ProcessBackend(settings).provision("t-gpu-refused", Resources(gpus=1))
    assert KubernetesBackend.schedules_gpus
