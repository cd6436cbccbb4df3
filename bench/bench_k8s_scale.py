"""Create and tear down many trial namespaces on a real control plane: time per trial as the count grows.

Each trial is what the kubernetes backend creates for it (namespace, NetworkPolicy, ResourceQuota,
LimitRange, model-server Deployment and Service) through the backend itself. The Deployment is
created with 0 replicas: this measures the control plane (API server, etcd, controllers), not image
starts on the node, which the conformance tests cover. Trials are created one after another while
the number already present grows through the tiers (so the last tier's trials are created next to
all the earlier ones), then torn down concurrently, each teardown waiting until its namespace is
gone (verified, as the backend always does). Prints p50/p99 per tier, the ratio of the last tier's
p50 to the first's (the baseline, measured in the same run; 1.0 means no slowdown as trials
accumulate), and the objects left (must be 0).

    eval "$(scripts/k8s-local.sh env)"   # after scripts/k8s-local.sh start
    python bench/bench_k8s_scale.py [--tiers 25,50,100,200] [--workers 16]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.summary import emit, figure, not_run  # noqa: E402
from orchestrator.backends import k8s_manifests as m  # noqa: E402
from orchestrator.backends.kubernetes import KubernetesBackend  # noqa: E402
from orchestrator.errors import BackendError, BackendUnavailableError  # noqa: E402
from orchestrator.settings import Settings  # noqa: E402
from orchestrator.spec import Resources  # noqa: E402

PREFIX = "t-bench-k8s"
RESOURCES = Resources(cpus=1.0, memory_mb=512)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def create(backend: KubernetesBackend, index: int) -> float:
    trial_id = f"{PREFIX}-{index:04d}"
    started = time.perf_counter()
    sandbox = backend.provision(trial_id, RESOURCES)
    namespace = sandbox.details["namespace"]
    deployment = m.model_deployment(
        trial_id, "regsandbox/bench:0", 8080, "/ping", RESOURCES, backend.settings
    )
    deployment.spec.replicas = 0
    backend._create(namespace, deployment, trial_id)
    backend._create(namespace, m.model_service(trial_id, 8080), trial_id)
    return time.perf_counter() - started


def teardown(backend: KubernetesBackend, index: int) -> float:
    started = time.perf_counter()
    result = backend.teardown(f"{PREFIX}-{index:04d}")
    if not result.verified:
        raise BackendError(f"teardown of trial {index} not verified: {result.remaining}")
    return time.perf_counter() - started


def left_over(backend: KubernetesBackend) -> int:
    from kubernetes import client

    selector = "regsandbox.managed=true"
    apps, net = client.AppsV1Api(backend.api), client.NetworkingV1Api(backend.api)
    found = [
        ns for ns in backend.core.list_namespace(label_selector=selector).items if PREFIX in ns.metadata.name
    ]
    found += [
        d
        for d in apps.list_deployment_for_all_namespaces(label_selector=selector).items
        if PREFIX in d.metadata.namespace
    ]
    found += [
        p
        for p in net.list_network_policy_for_all_namespaces(label_selector=selector).items
        if PREFIX in p.metadata.namespace
    ]
    found += [
        s
        for s in backend.core.list_service_for_all_namespaces(label_selector=selector).items
        if PREFIX in s.metadata.namespace
    ]
    return len(found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiers", default="25,50,100,200")
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
    tiers = [int(t) for t in args.tiers.split(",")]
    # Only a cluster named on purpose (KUBECONFIG), never whatever ~/.kube/config points at: the
    # bench creates and deletes hundreds of namespaces.
    if not os.environ.get("KUBECONFIG"):
        print("bench_k8s_scale: no cluster (run scripts/k8s-local.sh start and eval its env); not measured")
        not_run(
            "k8s_scale",
            "no Kubernetes cluster configured (KUBECONFIG is not set; scripts/k8s-local.sh start)",
        )
        return 0
    backend = KubernetesBackend(Settings(home=Path(tempfile.mkdtemp(prefix="bench-k8s-"))))
    try:
        backend.ping()
    except BackendUnavailableError as exc:
        print(f"bench_k8s_scale: {exc}; not measured")
        not_run("k8s_scale", f"KUBECONFIG={os.environ['KUBECONFIG']}: {exc}")
        return 0
    backend.reap(everything=True, prefix=PREFIX)  # what an interrupted earlier run left
    created: dict[int, list[float]] = {}
    done = 0
    for tier in tiers:
        created[tier] = [create(backend, i) for i in range(done, tier)]
        done = tier
    started = time.perf_counter()
    with ThreadPoolExecutor(args.workers) as pool:
        removed = list(pool.map(lambda i: teardown(backend, i), range(done)))
    teardown_wall = time.perf_counter() - started
    print(f"{'trials present':>16} {'created':>8} {'p50 s':>8} {'p99 s':>8}")
    for tier, times in created.items():
        print(f"{tier:>16} {len(times):>8} {percentile(times, 0.5):>8.3f} {percentile(times, 0.99):>8.3f}")
    first, last = created[tiers[0]], created[tiers[-1]]
    print(f"create p50 ratio, tier {tiers[-1]} vs tier {tiers[0]} (baseline): "
          f"{percentile(last, 0.5) / percentile(first, 0.5):.2f}")  # fmt: skip
    print(f"teardown of {done} trials, {args.workers} at once: wall {teardown_wall:.1f} s, "
          f"per trial p50 {percentile(removed, 0.5):.2f} s p99 {percentile(removed, 0.99):.2f} s "
          f"mean {statistics.mean(removed):.2f} s")  # fmt: skip
    left = left_over(backend)
    print(f"objects left: {left}")
    emit(
        "k8s_scale",
        [
            figure(
                f"create p50 with {tiers[-1]} trials present",
                percentile(last, 0.5),
                "s",
                f"create p50 with {tiers[0]} present",
                percentile(first, 0.5),
            ),
            figure(
                f"create p99 with {tiers[-1]} trials present",
                percentile(last, 0.99),
                "s",
                f"create p99 with {tiers[0]} present",
                percentile(first, 0.99),
            ),
        ],
    )
    return 0 if left == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
