"""The Helm chart installed into a real Kubernetes control plane (scripts/k8s-local.sh, or any
cluster KUBECONFIG names) through the Helm SDK, every object read back from the API server, and
uninstalled leaving nothing: no object of the release, no pod, no release record.

Every workload must get a pod placed on a node (the controllers and the admission chain accept
the pod specs). Whether the pods then serve depends on the node: the servers reach PostgreSQL
through a Service, which takes a pod network, and HTTP probes need a pod IP; the local control
plane's kubelet runs pods with no network at all, so there they start and restart. Their states
are printed; tests/helm/test_chart_on_docker.py runs the same pods to readiness on Docker.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import _missing
from tests.helm.chart import CHART

helm = pytest.importorskip("helm_python")
kubernetes = pytest.importorskip("kubernetes")

IMAGE = {"repository": "regsandbox/platform", "tag": "0.1.0"}
RELEASE = "rs"
WORKLOADS = {"platform", "prefect", "mlflow", "postgresql"}
# Small requests: the whole release fits on one small node (the local control plane's has 2 CPUs).
SMALL = {"resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}}


def _kubeconfig() -> Path:
    found = os.environ.get("KUBECONFIG")
    if not found or not Path(found).is_file():
        _missing("no cluster: KUBECONFIG does not name a kubeconfig (make test-k8s starts one)")
    return Path(str(found))


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[Path, Any]]:
    from kubernetes import client, config

    path = _kubeconfig()
    api_client = config.new_client_from_config(config_file=str(path))
    try:
        client.VersionApi(api_client).get_code()
    except Exception as exc:  # noqa: BLE001 - any failure means "no cluster answers"
        _missing(f"the cluster in {path} does not answer: {exc}")
    yield path, api_client
    api_client.close()


def _resource(dyn: Any, obj: dict[str, Any]) -> Any:
    return dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])


def _exists(dyn: Any, obj: dict[str, Any], namespace: str) -> bool:
    from kubernetes.dynamic.exceptions import NotFoundError

    resource = _resource(dyn, obj)
    try:
        if resource.namespaced:
            resource.get(name=obj["metadata"]["name"], namespace=namespace)
        else:
            resource.get(name=obj["metadata"]["name"])
    except NotFoundError:
        return False
    return True


def _leftovers(dyn: Any, core: Any, manifest: list[dict[str, Any]], namespace: str) -> list[str]:
    """Everything of the release still in the cluster: its objects, pods, claims, release records."""
    left = [f"{o['kind']}/{o['metadata']['name']}" for o in manifest if _exists(dyn, o, namespace)]
    selector = f"app.kubernetes.io/instance={RELEASE}"
    left += [
        f"Pod/{p.metadata.name}" for p in core.list_namespaced_pod(namespace, label_selector=selector).items
    ]
    claims = core.list_namespaced_persistent_volume_claim(namespace, label_selector=selector).items
    left += [f"PersistentVolumeClaim/{c.metadata.name}" for c in claims]
    records = core.list_namespaced_secret(namespace, label_selector=f"owner=helm,name={RELEASE}").items
    left += [f"Secret/{s.metadata.name} (release record)" for s in records]
    return left


def _scheduled(core: Any, namespace: str) -> set[str]:
    """Components whose pod exists and was placed on a node."""
    return {
        pod.metadata.labels["app.kubernetes.io/component"]
        for pod in core.list_namespaced_pod(namespace).items
        if pod.spec.node_name
    }


def _pod_states(core: Any, namespace: str) -> dict[str, str]:
    states = {}
    for pod in core.list_namespaced_pod(namespace).items:
        component = pod.metadata.labels.get("app.kubernetes.io/component", pod.metadata.name)
        ready = all(c.ready for c in pod.status.container_statuses or []) and bool(
            pod.status.container_statuses
        )
        waiting = [
            c.state.waiting.reason
            for c in (pod.status.init_container_statuses or []) + (pod.status.container_statuses or [])
            if c.state and c.state.waiting
        ]
        states[component] = (
            f"{pod.status.phase}{' Ready' if ready else ''}{' ' + ','.join(waiting) if waiting else ''}"
        )
    return states


@pytest.mark.slow
def test_chart_installs_and_uninstalls_leaving_nothing(api: tuple[Path, Any]) -> None:
    from kubernetes import client
    from kubernetes.dynamic import DynamicClient

    path, api_client = api
    core = client.CoreV1Api(api_client)
    dyn = DynamicClient(api_client)
    namespace = f"rs-chart-{uuid.uuid4().hex[:6]}"
    values = {
        "image": {**IMAGE, "pullPolicy": "Never"},
        # No volume provisioner on the local control plane: emptyDir volumes.
        "persistence": {"enabled": False},
        "runner": {"reapIntervalSeconds": 60, **SMALL},
        "platform": SMALL,
        "prefect": SMALL,
        "mlflow": SMALL,
        "postgresql": SMALL,
    }
    config = helm.Config(kubeconfig_path=path, namespace=namespace)
    try:
        started = time.monotonic()
        release = config.install(
            CHART, RELEASE, values, namespace=namespace, create_namespace=True, timeout=180
        )
        installed_s = time.monotonic() - started
        manifest = [doc for doc in yaml.safe_load_all(release["manifest"]) if doc]
        assert len(manifest) >= 15
        missing = [f"{o['kind']}/{o['metadata']['name']}" for o in manifest if not _exists(dyn, o, namespace)]
        assert missing == []
        # The API server kept what the chart asked for (1.20 has no Pod Security admission to check it).
        stored = client.AppsV1Api(api_client).read_namespaced_deployment(
            f"{RELEASE}-regsandbox-platform", namespace
        )
        runner = next(c for c in stored.spec.template.spec.containers if c.name == "runner")
        assert runner.security_context.read_only_root_filesystem is True
        assert stored.spec.template.spec.automount_service_account_token is False

        # The controllers turn every workload into a pod and the scheduler places it: the pod
        # specs passed admission. What the pods do next depends on the node (printed).
        deadline = time.monotonic() + 120
        states = _pod_states(core, namespace)
        scheduled = _scheduled(core, namespace)
        while time.monotonic() < deadline and scheduled != WORKLOADS:
            time.sleep(2)
            scheduled = _scheduled(core, namespace)
        states = _pod_states(core, namespace)
        print(f"\ninstalled {len(manifest)} objects in {installed_s:.1f}s; pods: {states}")
        assert scheduled == WORKLOADS, states

        started = time.monotonic()
        config.uninstall(RELEASE, wait="watcher", timeout=180)
        deadline = time.monotonic() + 180
        left = _leftovers(dyn, core, manifest, namespace)
        while left and time.monotonic() < deadline:
            time.sleep(1)
            left = _leftovers(dyn, core, manifest, namespace)
        print(f"uninstalled in {time.monotonic() - started:.1f}s; left behind: {left}")
        assert left == []
        assert RELEASE not in [r.get("name") for r in config.list(all_states=True)]
    finally:
        config.uninstall(RELEASE, ignore_not_found=True, timeout=120)
        config.close()
        try:
            core.delete_namespace(namespace)
        except client.ApiException as exc:
            if exc.status != 404:
                raise


@pytest.mark.slow
@pytest.mark.parametrize("keep", [False, True])
def test_volume_claims_go_or_stay_with_the_release(api: tuple[Path, Any], keep: bool) -> None:
    """With persistence on, uninstall deletes the claims unless keepOnUninstall keeps them (the
    default: they hold reports, keys and databases); then exactly the three claims remain."""
    from kubernetes import client
    from kubernetes.dynamic import DynamicClient

    path, api_client = api
    core = client.CoreV1Api(api_client)
    dyn = DynamicClient(api_client)
    namespace = f"rs-claims-{uuid.uuid4().hex[:6]}"
    values = {"image": {**IMAGE, "pullPolicy": "Never"}, "persistence": {"keepOnUninstall": keep}}
    config = helm.Config(kubeconfig_path=path, namespace=namespace)
    try:
        release = config.install(
            CHART, RELEASE, values, namespace=namespace, create_namespace=True, timeout=180
        )
        manifest = [doc for doc in yaml.safe_load_all(release["manifest"]) if doc]
        claims = sorted(
            f"PersistentVolumeClaim/{o['metadata']['name']}"
            for o in manifest
            if o["kind"] == "PersistentVolumeClaim"
        )
        assert claims == [
            f"PersistentVolumeClaim/{RELEASE}-regsandbox-{c}" for c in ("artifacts", "home", "pgdata")
        ]
        assert [
            f"{o['kind']}/{o['metadata']['name']}" for o in manifest if not _exists(dyn, o, namespace)
        ] == []
        config.uninstall(RELEASE, wait="watcher", timeout=180)
        deadline = time.monotonic() + 180
        left = _leftovers(dyn, core, manifest, namespace)
        while sorted(set(left)) != (claims if keep else []) and time.monotonic() < deadline:
            time.sleep(1)
            left = _leftovers(dyn, core, manifest, namespace)
        print(f"\nkeepOnUninstall={keep}: left behind {sorted(set(left))}")
        assert sorted(set(left)) == (claims if keep else [])
    finally:
        config.uninstall(RELEASE, ignore_not_found=True, timeout=120)
        config.close()
        try:
            core.delete_namespace(namespace)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
