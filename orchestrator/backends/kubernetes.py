"""Kubernetes backend: one namespace per trial, everything in it found and removed by label.

The objects themselves are built in ``k8s_manifests`` (validated offline in the tests); this
module only talks to the API server. The isolation probes run in a pod of the trial's namespace,
under the trial's NetworkPolicy, so a cluster whose network plugin does not enforce that policy
fails attestation, unless the operator has said otherwise (``kube_accept_unenforced_network_policy``),
and even then the attestation says so.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

from orchestrator.backends import k8s_manifests as m
from orchestrator.backends.attestation import ALL_PROBES
from orchestrator.backends.base import (
    LABEL_MANAGED,
    LABEL_TRIAL,
    Endpoint,
    Sandbox,
    SandboxBackend,
)
from orchestrator.backends.k8s_observation import PodObservation, _init_running, _ready, _why
from orchestrator.backends.k8s_transfer import PortForwardRelay, deliver_model
from orchestrator.errors import BackendError, BackendUnavailableError, SandboxTimeoutError
from orchestrator.settings import Settings, get_settings
from orchestrator.spec import Resources
from orchestrator.templates import Template, ensure_image


def _kubeconfig(settings: Settings) -> str | None:
    if settings.kubeconfig:
        return str(settings.kubeconfig)
    if os.environ.get("KUBECONFIG"):
        return os.environ["KUBECONFIG"]
    default = Path("~/.kube/config").expanduser()
    return str(default) if default.is_file() else None


class KubernetesBackend(PodObservation, SandboxBackend):
    name = "kubernetes"
    isolation_level = "pod"
    # Kubernetes cannot mount an emptyDir noexec, and its PID limit is per pod (kubelet
    # --pod-max-pids), invisible from inside the container: neither is claimed.
    required_probes = frozenset(ALL_PROBES) - {"noexec-tmp", "pids-limit"}
    schedules_gpus = True

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self._api: Any = None
        self._relays: dict[str, PortForwardRelay] = {}

    # -- client ----------------------------------------------------------------------
    @property
    def api(self) -> Any:
        if self._api is None:
            from kubernetes import client, config

            path = _kubeconfig(self.settings)
            try:
                if path:
                    self._api = config.new_client_from_config(
                        config_file=path, context=self.settings.kube_context
                    )
                elif os.environ.get("KUBERNETES_SERVICE_HOST"):
                    config.load_incluster_config()
                    self._api = client.ApiClient()
                else:
                    raise BackendUnavailableError(
                        "[kubernetes] no cluster configured: set REGSANDBOX_KUBECONFIG or KUBECONFIG "
                        "(scripts/k8s-local.sh start && eval $(scripts/k8s-local.sh env) for a local one)"
                    )
            except (config.ConfigException, OSError, TypeError, ValueError) as exc:
                raise BackendUnavailableError(f"[kubernetes] cannot load kubeconfig {path}: {exc}") from exc
        return self._api

    @property
    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api)

    def stream_core(self) -> Any:
        """A CoreV1Api on a client of its own, for one exec or port-forward (see PortForwardRelay)."""
        from kubernetes import client

        return client.CoreV1Api(client.ApiClient(self.api.configuration))

    def ping(self) -> None:
        from kubernetes import client

        api = self.api  # raises its own clear error when no cluster is configured
        try:
            client.VersionApi(api).get_code(_request_timeout=5)
        except Exception as exc:  # urllib3, TLS and API errors alike mean "no cluster answers"
            raise BackendUnavailableError(
                f"[kubernetes] the cluster does not answer: {type(exc).__name__}: {str(exc)[:200]}"
            ) from exc

    def _create(self, namespace: str | None, obj: Any, trial_id: str) -> Any:
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        kind = obj.kind
        namespace = namespace or ""
        try:
            if kind == "Namespace":
                return self.core.create_namespace(obj)
            if kind == "NetworkPolicy":
                return client.NetworkingV1Api(self.api).create_namespaced_network_policy(namespace, obj)
            if kind == "Deployment":
                return client.AppsV1Api(self.api).create_namespaced_deployment(namespace, obj)
            create = {
                "ResourceQuota": self.core.create_namespaced_resource_quota,
                "LimitRange": self.core.create_namespaced_limit_range,
                "Service": self.core.create_namespaced_service,
                "Pod": self.core.create_namespaced_pod,
            }[kind]
            return create(namespace, obj)
        except ApiException as exc:
            raise BackendError(
                f"[kubernetes] trial {trial_id}: cannot create {kind}: {exc.status} {exc.reason} "
                f"{(exc.body or '')[:300]}"
            ) from exc

    # -- lifecycle -------------------------------------------------------------------
    def manifests(self, trial_id: str, resources: Resources, owner: dict[str, str]) -> list[Any]:
        """The objects provisioning creates, in order (the namespace first)."""
        gpu = self.settings.kube_gpu_resource
        return [
            m.namespace(m.namespace_name(trial_id), trial_id, owner),
            m.network_policy(
                trial_id, self.settings.kube_gateway_namespace, self.settings.kube_gateway_labels
            ),
            m.resource_quota(trial_id, resources, gpu),
            m.limit_range(trial_id, resources, gpu),
        ]

    def _provision(self, trial_id: str, resources: Resources, labels: dict[str, str]) -> Sandbox:
        namespace = m.namespace_name(trial_id)
        objects = self.manifests(trial_id, resources, labels)
        self._create(None, objects[0], trial_id)
        for obj in objects[1:]:
            self._create(namespace, obj, trial_id)
        return Sandbox(
            trial_id=trial_id,
            backend=self.name,
            resources=resources,
            labels=labels,
            details={"namespace": namespace},
        )

    def _image(self, template: Template) -> tuple[str, str | None]:
        """The template's image, built here and, for a local cluster, loaded into its node."""
        from orchestrator.backends.docker import DockerBackend

        docker = DockerBackend(self.settings).client
        image = ensure_image(template, self.settings, docker)
        for tag in (self.settings.base_image, image.tag):
            self._load_into_node(tag)
        return image.tag, image.id

    def _load_into_node(self, tag: str) -> None:
        node = self.settings.kube_node_docker_host
        if not node:
            return
        present = subprocess.run(
            ["docker", "-H", node, "image", "inspect", tag], capture_output=True, check=False
        )
        if present.returncode == 0:
            return
        source = ["docker", *(["-H", self.settings.docker_host] if self.settings.docker_host else [])]
        save = subprocess.Popen([*source, "save", tag], stdout=subprocess.PIPE)
        load = subprocess.run(
            ["docker", "-H", node, "load"], stdin=save.stdout, capture_output=True, check=False
        )
        save.wait()
        if save.returncode or load.returncode:
            raise BackendError(
                f"[kubernetes] cannot load {tag} into the node's engine: {load.stderr[-300:]!r}"
            )

    def _deploy(self, sandbox: Sandbox, template: Template, model_dir: Path) -> Endpoint:
        started = time.monotonic()
        trial_id, namespace = sandbox.trial_id, sandbox.details["namespace"]
        image, digest = self._image(template)
        deployment = m.model_deployment(
            trial_id, image, template.port, template.health_path, sandbox.resources, self.settings
        )
        self._create(namespace, deployment, trial_id)
        self._create(namespace, m.model_service(trial_id, template.port), trial_id)
        deadline = started + self.settings.health_timeout_s
        pod = self._wait_pod(namespace, trial_id, deadline, lambda p: _init_running(p, m.LOADER))
        self._deliver(namespace, pod.metadata.name, model_dir, deadline)
        pod = self._wait_pod(namespace, trial_id, deadline, _ready)
        relay = PortForwardRelay(self.stream_core, namespace, pod.metadata.name, template.port).start()
        self._relays[trial_id] = relay
        return Endpoint(
            url=relay.url,
            health_path=template.health_path,
            container=pod.metadata.name,
            image=image,
            image_digest=digest,
            ready_s=time.monotonic() - started,
        )

    def _deliver(self, namespace: str, pod: str, model_dir: Path, deadline: float) -> None:
        """Stream the model in, retrying while the kubelet does not know the just-started init
        container yet (its exec answers "container not found" for a moment after the pod's status
        says running)."""
        from kubernetes.client.rest import ApiException

        while True:
            try:
                core = self.stream_core()
                deliver_model(core, namespace, pod, m.LOADER, model_dir, self.settings.health_timeout_s)
                return
            except (ApiException, BackendError) as exc:
                # Also retried: the receiver killed (137) by a restart of the init container; the
                # new one waits for the artefact in the same volume.
                again = "container not found" in str(exc) or "failed (137)" in str(exc)
                if not again or time.monotonic() > deadline:
                    raise BackendError(
                        f"[kubernetes] cannot deliver the model into {namespace}/{pod}: {exc}"
                    ) from exc
                time.sleep(0.5)

    def _server_pod(self, namespace: str) -> Any:
        pods = self.core.list_namespaced_pod(namespace, label_selector=f"{m.APP_LABEL}={m.SERVER}").items
        live = [p for p in pods if p.metadata.deletion_timestamp is None]
        return live[0] if live else None

    def _wait_pod(self, namespace: str, trial_id: str, deadline: float, done: Any) -> Any:
        delay = 0.1
        pod = None
        while time.monotonic() < deadline:
            pod = self._server_pod(namespace)
            if pod is not None and done(pod):
                return pod
            if pod is not None and pod.status.phase == "Failed":
                raise BackendError(f"[kubernetes] trial {trial_id}: model server pod failed: {_why(pod)}")
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)
        tail = self._server_log_tail(pod) if pod else ""
        raise SandboxTimeoutError(
            f"[kubernetes] trial {trial_id}: model server pod not ready after "
            f"{self.settings.health_timeout_s:.0f}s: {_why(pod) if pod else 'no pod was created'}\n{tail}"
        )

    def _server_log_tail(self, pod: Any) -> str:
        """The server's last lines, from its previous run when it has restarted (why it crashed)."""
        for previous in (True, False):
            try:
                return str(
                    self.core.read_namespaced_pod_log(
                        pod.metadata.name,
                        pod.metadata.namespace,
                        container=m.SERVER,
                        previous=previous,
                        tail_lines=40,
                    )
                )
            except Exception:  # noqa: S112 - no previous run, or not started: try the next source
                continue
        return ""

    def _namespaces(self, selector: str) -> list[Any]:
        return list(self.core.list_namespace(label_selector=selector).items)

    def _teardown(self, trial_id: str) -> list[str]:
        from kubernetes.client.rest import ApiException

        relay = self._relays.pop(trial_id, None)
        if relay is not None:
            relay.close()
        removed = []
        for ns in self._namespaces(f"{LABEL_TRIAL}={trial_id}"):
            try:
                if ns.metadata.deletion_timestamp is None:  # else already going
                    self.core.delete_namespace(ns.metadata.name, propagation_policy="Background")
                    removed.append(f"namespace {ns.metadata.name}")
                # A terminating namespace admits no new pod, so this cannot race the ReplicaSet.
                # Without it the namespace controller finds the pods still terminating and backs
                # off (2.5 s, 5 s, ... 40 s): a teardown then takes 90 s instead of a few.
                self.core.delete_collection_namespaced_pod(ns.metadata.name, grace_period_seconds=0)
            except ApiException as exc:
                if exc.status != 404:
                    raise BackendError(
                        f"[kubernetes] trial {trial_id}: cannot delete namespace: {exc.reason}"
                    ) from exc
        self._wait_gone(trial_id)
        return removed

    def _wait_gone(self, trial_id: str) -> None:
        """Namespace deletion is asynchronous: wait (bounded) until the API no longer lists it, so
        that teardown is verified rather than merely requested."""
        deadline = time.monotonic() + self.settings.kube_teardown_timeout_s
        delay = 0.1
        while self._remaining(trial_id) and time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    def _remaining(self, trial_id: str) -> list[str]:
        return [
            f"namespace {ns.metadata.name}" + (" (terminating)" if ns.metadata.deletion_timestamp else "")
            for ns in self._namespaces(f"{LABEL_TRIAL}={trial_id}")
        ]

    def _owned(self) -> dict[str, dict[str, str]]:
        owned: dict[str, dict[str, str]] = {}
        for ns in self._namespaces(f"{LABEL_MANAGED}=true"):
            labels = {**(ns.metadata.annotations or {}), **(ns.metadata.labels or {})}
            if LABEL_TRIAL in labels:
                owned.setdefault(labels[LABEL_TRIAL], labels)
        return owned
