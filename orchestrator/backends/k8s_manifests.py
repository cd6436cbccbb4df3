"""The Kubernetes objects of one trial, built as official client models and never sent anywhere.

Kept apart from the API calls so that every manifest can be validated offline against the
published schemas (``kubernetes-validate``) and read in review without a cluster. One trial is
one namespace, labelled with the trial id, holding:

* a NetworkPolicy denying all egress and admitting ingress only from the platform's gateway;
* a ResourceQuota and a LimitRange sized from the trial spec's resources;
* the model server Deployment (restricted security context, no service-account token), whose
  init container receives the model artefact from the platform through the API server, so the
  model container never needs the network, and a Service with explicit TCP ports;
* short-lived probe pods that run the isolation probes under exactly the same restrictions.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from orchestrator.backends.base import LABEL_MANAGED, LABEL_TRIAL

if TYPE_CHECKING:
    from kubernetes.client import (
        V1Deployment,
        V1LimitRange,
        V1Namespace,
        V1NetworkPolicy,
        V1Pod,
        V1PodSpec,
        V1ResourceQuota,
        V1Service,
    )

    from orchestrator.spec import Resources

MODEL_MOUNT = "/model"
MODEL_READY = ".complete"
LOADER = "model-loader"
SERVER = "model"
APP_LABEL = "regsandbox.role"
# CPU is requested at a tenth of the limit (at most 100m) so that a small node can hold many
# idle sandboxes; memory is requested at its limit, which is what the OOM killer enforces.
CPU_REQUEST_MAX = 0.1
TERMINATION_GRACE_S = 2

# The init container waits for the platform to stream the model in (see k8s_transfer) and exits
# once the marker file exists; a pod recreated later waits again and times out loudly.
LOADER_SCRIPT = f"""
import os, sys, time
deadline = time.time() + float(sys.argv[1])
while not os.path.exists("{MODEL_MOUNT}/{MODEL_READY}"):
    if time.time() > deadline:
        sys.exit("no model artefact was delivered in time")
    time.sleep(0.2)
"""


def namespace_name(trial_id: str, suffix: str = "") -> str:
    """``rs-<trial id>[-suffix]``, shortened with a hash when it would exceed 63 characters."""
    name = f"rs-{trial_id}{suffix}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(trial_id.encode()).hexdigest()[:8]
    return f"rs-{trial_id[: 63 - len(suffix) - 12].rstrip('-')}-{digest}{suffix}"


def object_labels(trial_id: str) -> dict[str, str]:
    """Labels are for selection (teardown, sweep); owner details go in annotations, whose values
    may hold anything (a host name longer than a label value allows)."""
    return {LABEL_MANAGED: "true", LABEL_TRIAL: trial_id}


def _meta(
    name: str | None, trial_id: str, annotations: dict[str, str] | None = None, role: str | None = None
) -> Any:
    from kubernetes.client import V1ObjectMeta

    labels = object_labels(trial_id) | ({APP_LABEL: role} if role else {})
    return V1ObjectMeta(name=name, labels=labels, annotations=annotations)


def _quantities(resources: Resources, gpu_resource: str) -> tuple[dict[str, str], dict[str, str]]:
    """(requests, limits) for one container of the sandbox."""
    memory = f"{resources.memory_mb}Mi"
    limits = {"cpu": f"{round(resources.cpus * 1000)}m", "memory": memory}
    requests = {"cpu": f"{round(min(resources.cpus / 10, CPU_REQUEST_MAX) * 1000)}m", "memory": memory}
    if resources.gpus:
        # Extended resources cannot be overcommitted: request and limit must be equal.
        limits[gpu_resource] = requests[gpu_resource] = str(resources.gpus)
    return requests, limits


def namespace(name: str, trial_id: str, owner: dict[str, str]) -> V1Namespace:
    from kubernetes.client import V1Namespace

    return V1Namespace(api_version="v1", kind="Namespace", metadata=_meta(name, trial_id, owner))


def network_policy(trial_id: str, gateway_namespace: str, gateway_labels: dict[str, str]) -> V1NetworkPolicy:
    from kubernetes.client import (
        V1LabelSelector,
        V1NetworkPolicy,
        V1NetworkPolicyIngressRule,
        V1NetworkPolicyPeer,
        V1NetworkPolicySpec,
    )

    # Both selectors in ONE peer: the gateway's pods in the platform's namespace, not any pod
    # labelled like the gateway nor any pod of that namespace.
    gateway = V1NetworkPolicyPeer(
        namespace_selector=V1LabelSelector(match_labels={"kubernetes.io/metadata.name": gateway_namespace}),
        pod_selector=V1LabelSelector(match_labels=gateway_labels),
    )
    return V1NetworkPolicy(
        api_version="networking.k8s.io/v1",
        kind="NetworkPolicy",
        metadata=_meta("sandbox-isolation", trial_id),
        spec=V1NetworkPolicySpec(
            pod_selector=V1LabelSelector(),  # every pod of the namespace
            policy_types=["Ingress", "Egress"],
            # "from" is a Python keyword: the client model only takes it by its alias "_from".
            ingress=[V1NetworkPolicyIngressRule(**{"_from": [gateway]})],
            egress=[],  # nothing, not even DNS
        ),
    )


def resource_quota(trial_id: str, resources: Resources, gpu_resource: str) -> V1ResourceQuota:
    from kubernetes.client import V1ResourceQuota, V1ResourceQuotaSpec

    requests, limits = _quantities(resources, gpu_resource)
    hard = {f"limits.{k}": v for k, v in limits.items() if k in ("cpu", "memory")}
    hard |= {"requests.cpu": limits["cpu"], "requests.memory": limits["memory"]}
    if resources.gpus:
        hard[f"requests.{gpu_resource}"] = requests[gpu_resource]
    # One model server and one probe pod at most; no way to reach out through the node.
    hard |= {"pods": "2", "services": "1", "services.nodeports": "0", "services.loadbalancers": "0"}
    hard |= {"persistentvolumeclaims": "0", "secrets": "4", "configmaps": "4"}
    return V1ResourceQuota(
        api_version="v1",
        kind="ResourceQuota",
        metadata=_meta("sandbox-quota", trial_id),
        spec=V1ResourceQuotaSpec(hard=hard),
    )


def limit_range(trial_id: str, resources: Resources, gpu_resource: str) -> V1LimitRange:
    from kubernetes.client import V1LimitRange, V1LimitRangeItem, V1LimitRangeSpec

    requests, limits = _quantities(resources, gpu_resource)
    cpu_mem = {k: v for k, v in limits.items() if k in ("cpu", "memory")}
    return V1LimitRange(
        api_version="v1",
        kind="LimitRange",
        metadata=_meta("sandbox-limits", trial_id),
        spec=V1LimitRangeSpec(
            limits=[
                V1LimitRangeItem(
                    type="Container",
                    default=cpu_mem,
                    default_request={k: v for k, v in requests.items() if k in ("cpu", "memory")},
                    max=cpu_mem,
                )
            ]
        ),
    )


def _container(name: str, image: str, command: list[str], resources: Resources, settings: Any) -> Any:
    from kubernetes.client import (
        V1Capabilities,
        V1Container,
        V1ResourceRequirements,
        V1SecurityContext,
        V1VolumeMount,
    )

    if name == LOADER:  # it only unpacks the artefact: no GPU held while waiting for it
        resources = resources.model_copy(update={"gpus": 0})
    requests, limits = _quantities(resources, settings.kube_gpu_resource)
    return V1Container(
        name=name,
        image=image,
        image_pull_policy="IfNotPresent",
        command=command,
        resources=V1ResourceRequirements(requests=requests, limits=limits),
        security_context=V1SecurityContext(
            allow_privilege_escalation=False,
            privileged=False,
            read_only_root_filesystem=True,
            run_as_non_root=True,
            capabilities=V1Capabilities(drop=["ALL"]),
        ),
        volume_mounts=[
            V1VolumeMount(name="model", mount_path=MODEL_MOUNT, read_only=name != LOADER),
            V1VolumeMount(name="tmp", mount_path="/tmp"),  # noqa: S108 - the pod's own tmpfs
            V1VolumeMount(name="shm", mount_path="/dev/shm"),  # noqa: S108 - the pod's own tmpfs
        ],
    )


def _pod_spec(
    containers: list[Any], settings: Any, init: list[Any] | None = None, restart: str = "Always"
) -> V1PodSpec:
    from kubernetes.client import (
        V1EmptyDirVolumeSource,
        V1PodSecurityContext,
        V1PodSpec,
        V1SeccompProfile,
        V1Volume,
    )

    uid, _, gid = settings.sandbox_user.partition(":")
    memory = V1EmptyDirVolumeSource  # medium Memory: what the server writes never reaches the disk
    return V1PodSpec(
        containers=containers,
        init_containers=init,
        restart_policy=restart,
        automount_service_account_token=False,
        enable_service_links=False,
        termination_grace_period_seconds=TERMINATION_GRACE_S,
        security_context=V1PodSecurityContext(
            run_as_non_root=True,
            run_as_user=int(uid),
            run_as_group=int(gid or uid),
            fs_group=int(gid or uid),
            seccomp_profile=V1SeccompProfile(type="RuntimeDefault"),
        ),
        volumes=[
            # On the node's disk: a model in tmpfs would count against the server's memory limit.
            V1Volume(name="model", empty_dir=V1EmptyDirVolumeSource(size_limit="4Gi")),
            V1Volume(name="tmp", empty_dir=memory(medium="Memory", size_limit=f"{settings.tmpfs_size_mb}Mi")),
            V1Volume(name="shm", empty_dir=memory(medium="Memory", size_limit="16Mi")),
        ],
    )


def model_deployment(
    trial_id: str, image: str, port: int, health_path: str, resources: Resources, settings: Any
) -> V1Deployment:
    from kubernetes.client import (
        V1ContainerPort,
        V1Deployment,
        V1DeploymentSpec,
        V1DeploymentStrategy,
        V1EnvVar,
        V1ExecAction,
        V1LabelSelector,
        V1PodTemplateSpec,
        V1Probe,
    )

    server = _container(SERVER, image, [], resources, settings)
    server.command = None  # the image's own entrypoint serves the model
    server.env = [V1EnvVar(name="MODEL_DIR", value=MODEL_MOUNT), V1EnvVar(name="PORT", value=str(port))]
    server.ports = [V1ContainerPort(container_port=port, protocol="TCP", name="http")]
    # An exec probe from inside the pod, not httpGet: the kubelet's httpGet dials the pod's IP, and
    # a sandbox may have none (no network at all is the strictest isolation a node can give).
    health = (
        f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}{health_path}', timeout=2)"
    )
    server.readiness_probe = V1Probe(
        **{"_exec": V1ExecAction(command=["python3", "-c", health])},  # "exec" only by its alias
        period_seconds=1,
        timeout_seconds=3,
        failure_threshold=3,
    )
    loader = _container(
        LOADER,
        settings.base_image,
        ["python3", "-c", LOADER_SCRIPT, str(settings.health_timeout_s)],
        resources,
        settings,
    )
    selector = {**object_labels(trial_id), APP_LABEL: SERVER}
    return V1Deployment(
        api_version="apps/v1",
        kind="Deployment",
        metadata=_meta("model-server", trial_id, role=SERVER),
        spec=V1DeploymentSpec(
            replicas=1,
            selector=V1LabelSelector(match_labels=selector),
            # Never two model servers at once: the quota holds one, and the artefact goes to one.
            strategy=V1DeploymentStrategy(type="Recreate"),
            template=V1PodTemplateSpec(
                metadata=_meta(None, trial_id, role=SERVER),
                spec=_pod_spec([server], settings, init=[loader]),
            ),
        ),
    )


def model_service(trial_id: str, port: int) -> V1Service:
    from kubernetes.client import V1Service, V1ServicePort, V1ServiceSpec

    return V1Service(
        api_version="v1",
        kind="Service",
        metadata=_meta("model-server", trial_id),
        spec=V1ServiceSpec(
            type="ClusterIP",
            selector={**object_labels(trial_id), APP_LABEL: SERVER},
            # protocol written out: server-side apply on older API servers needs it explicit.
            ports=[V1ServicePort(name="http", port=port, target_port=port, protocol="TCP")],
        ),
    )


def probe_pod(
    name: str, trial_id: str, script: str, args_json: str, resources: Resources, settings: Any
) -> V1Pod:
    from kubernetes.client import V1Pod

    probe = _container(
        "probe", settings.base_image, ["python3", "-c", script, args_json], resources, settings
    )
    return V1Pod(
        api_version="v1",
        kind="Pod",
        metadata=_meta(name, trial_id, role="probe"),
        spec=_pod_spec([probe], settings, restart="Never"),
    )
