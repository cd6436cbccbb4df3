"""What the Kubernetes backend reads back from the cluster: isolation probes, stats, logs, controls.

Everything comes from the API server (pod status, logs, the kubelet's summary through the node
proxy); nothing needs a path into the sandbox's network.

The isolation probes run in a pod of the trial's namespace, under its NetworkPolicy. A pod that
cannot reach anything proves a policy only if the same attempt succeeds without the policy, so a
control pod runs the egress probe alone in a sibling namespace without one. When the control
cannot get out either (a cluster whose pods have no network route, like the local control plane
built by scripts/k8s-local.sh), the policy was never exercised: ``no-egress`` then fails, unless
the operator accepts an unenforced policy (``kube_accept_unenforced_network_policy``), in which
case it passes with a detail that says exactly that, and the report carries it.
"""

from __future__ import annotations

import json
import time
from typing import Any

from orchestrator.backends import k8s_manifests as m
from orchestrator.backends.attestation import ALL_PROBES, PROBE_SCRIPT
from orchestrator.backends.base import IsolationControl, ResourceStats, Sandbox
from orchestrator.errors import SandboxTimeoutError

CONTROL_SUFFIX = "-ctl"


def _init_running(pod: Any, name: str) -> bool:
    return any(
        s.name == name and s.state and s.state.running for s in pod.status.init_container_statuses or []
    )


def _ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def _why(pod: Any) -> str:
    """The most telling reason a pod is not running, from its container and pod conditions."""
    reasons = []
    for status in [*(pod.status.init_container_statuses or []), *(pod.status.container_statuses or [])]:
        state = status.state
        for part in (state.waiting, state.terminated) if state else ():
            if part is not None and part.reason:
                reasons.append(f"{status.name}: {part.reason} {part.message or ''}".strip())
    for condition in pod.status.conditions or []:
        if condition.status != "True" and condition.message:
            reasons.append(f"{condition.type}: {condition.message}")
    return "; ".join(reasons) or f"phase {pod.status.phase}"


def _last_json(output: str) -> list[dict[str, Any]]:
    try:
        found = json.loads(output.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return []
    return found if isinstance(found, list) else []


class PodObservation:
    """Mixed into KubernetesBackend: the read-back half of the backend."""

    settings: Any
    core: Any
    api: Any

    def _create(self, namespace: str | None, obj: Any, trial_id: str) -> Any: ...  # pragma: no cover

    def _server_pod(self, namespace: str) -> Any: ...  # pragma: no cover

    # -- attestation -----------------------------------------------------------------
    def _api_endpoint(self) -> list[Any] | None:
        """The API server's own address as pods see it: reachable from any pod with a network."""
        try:
            endpoints = self.core.read_namespaced_endpoints("kubernetes", "default")
            subset = endpoints.subsets[0]
            return [subset.addresses[0].ip, subset.ports[0].port]
        except Exception:  # no endpoints object readable: the proof falls back to the stand-in
            return None

    def _probe(self, namespace: str, sandbox: Sandbox, name: str, args: dict[str, Any]) -> str:
        script = PROBE_SCRIPT.read_text(encoding="utf-8")
        pod = m.probe_pod(name, sandbox.trial_id, script, json.dumps(args), sandbox.resources, self.settings)
        self._create(namespace, pod, sandbox.trial_id)
        deadline = time.monotonic() + self.settings.health_timeout_s
        try:
            while time.monotonic() < deadline:
                status = self.core.read_namespaced_pod(name, namespace).status
                if status.phase in ("Succeeded", "Failed"):
                    return str(self.core.read_namespaced_pod_log(name, namespace))
                time.sleep(0.25)
            raise SandboxTimeoutError(
                f"[kubernetes] trial {sandbox.trial_id}: probe pod {namespace}/{name} did not finish: "
                f"{_why(self.core.read_namespaced_pod(name, namespace))}"
            )
        finally:
            self.core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)

    def _run_probes(self, sandbox: Sandbox, args_json: str) -> str:
        args = json.loads(args_json)
        target = self._api_endpoint()
        if target:
            args["outside"].append(target)
        control_ns = m.namespace_name(sandbox.trial_id, CONTROL_SUFFIX)
        self._create(None, m.namespace(control_ns, sandbox.trial_id, sandbox.labels), sandbox.trial_id)
        only_egress = [p for p in ALL_PROBES if p != "no-egress"]
        control = _last_json(
            self._probe(
                control_ns,
                sandbox,
                "egress-control",
                {"outside": args["outside"], "skip": only_egress, "hosts": [], "canary_port": 1},
            )
        )
        self.core.delete_namespace(control_ns)
        output = self._probe(sandbox.details["namespace"], sandbox, "isolation-probe", args)
        results = _last_json(output)
        if not results:
            return output
        control_reached = any(r["probe"] == "no-egress" and not r["passed"] for r in control)
        for result in results:
            if result["probe"] == "no-egress":
                result.update(self._judge_policy(result, control_reached))
        return json.dumps(results)

    def _judge_policy(self, result: dict[str, Any], control_reached: bool) -> dict[str, Any]:
        if not result["passed"]:
            return {"detail": f"egress NOT blocked (the NetworkPolicy is not enforced): {result['detail']}"}
        if control_reached:
            return {"detail": f"NetworkPolicy enforced: a control pod without it got out; {result['detail']}"}
        accepted = self.settings.kube_accept_unenforced_network_policy
        detail = (
            "no egress seen, but NetworkPolicy enforcement is NOT proven: a control pod without the policy "
            "could not get out either (pods have no network route; no enforcing network plugin)"
        )
        if accepted:
            return {"detail": f"{detail}; accepted by the operator (kube_accept_unenforced_network_policy)"}
        return {
            "passed": False,
            "detail": f"{detail}; set REGSANDBOX_KUBE_ACCEPT_UNENFORCED_NETWORK_POLICY=true to accept",
        }

    # -- observation -----------------------------------------------------------------
    def _summary(self, node: str) -> dict[str, Any]:
        resp = self.core.connect_get_node_proxy_with_path(node, "stats/summary", _preload_content=False)
        return dict(json.loads(resp.data))

    def _cadvisor_processes(self, pod: Any) -> int | None:
        """The model container's process count from the kubelet's cAdvisor metrics: on cgroup v1 the
        summary's pod-level count reads the pod cgroup alone, whose processes live in children."""
        try:
            resp = self.core.connect_get_node_proxy_with_path(
                pod.spec.node_name, "metrics/cadvisor", _preload_content=False
            )
        except Exception:  # optional, as the summary is
            return None
        marks = (
            f'container="{m.SERVER}"',
            f'pod="{pod.metadata.name}"',
            f'namespace="{pod.metadata.namespace}"',
        )
        for line in resp.data.decode(errors="replace").splitlines():
            if line.startswith("container_processes{") and all(mark in line for mark in marks):
                return int(float(line.rsplit("}", 1)[1].split()[0]))
        return None

    def stats(self, sandbox: Sandbox) -> ResourceStats:
        from kubernetes.utils import parse_quantity

        pod = self._server_pod(sandbox.details["namespace"])
        if pod is None:
            return ResourceStats(running=False)
        statuses = {s.name: s for s in pod.status.container_statuses or []}
        server = statuses.get(m.SERVER)
        last = server.last_state.terminated if server and server.last_state else None
        oom = bool(last and last.reason == "OOMKilled")
        if server is None or not (server.state and server.state.running):
            return ResourceStats(running=False, oom_killed=oom)
        limit = next(c for c in pod.spec.containers if c.name == m.SERVER).resources.limits.get("memory")
        cpu = memory = pids = None
        try:
            summary = self._summary(pod.spec.node_name)
        except Exception:  # the node proxy may be forbidden: status still says running
            summary = {}
        for found in summary.get("pods", []):
            ref = found.get("podRef", {})
            if ref.get("name") != pod.metadata.name or ref.get("namespace") != pod.metadata.namespace:
                continue
            pids = found.get("process_stats", {}).get("process_count")
            for container in found.get("containers", []):
                if container.get("name") == m.SERVER:
                    nanos = container.get("cpu", {}).get("usageCoreNanoSeconds")
                    cpu = nanos / 1e9 if nanos is not None else None
                    memory = container.get("memory", {}).get("workingSetBytes")
        if not pids and pod.spec.node_name:
            pids = self._cadvisor_processes(pod)
        return ResourceStats(
            cpu_seconds=cpu,
            memory_bytes=memory,
            memory_limit_bytes=int(parse_quantity(limit)) if limit else None,
            pids=pids,
            oom_killed=oom,
        )

    def logs(self, sandbox: Sandbox, tail: int = 200) -> str:
        pod = self._server_pod(sandbox.details["namespace"])
        if pod is None:
            return ""
        try:
            return str(
                self.core.read_namespaced_pod_log(
                    pod.metadata.name, pod.metadata.namespace, container=m.SERVER, tail_lines=tail
                )
            )
        except Exception as exc:  # a container not started yet has no log
            return f"(no log: {getattr(exc, 'reason', exc)})"

    def isolation_controls(self, sandbox: Sandbox) -> list[IsolationControl]:
        from kubernetes import client

        namespace = sandbox.details["namespace"]
        policies: list[Any] = client.NetworkingV1Api(self.api).list_namespaced_network_policy(namespace).items
        deny = [p for p in policies if "Egress" in (p.spec.policy_types or []) and not p.spec.egress]
        quotas = self.core.list_namespaced_resource_quota(namespace).items
        limits = self.core.list_namespaced_limit_range(namespace).items
        controls = [
            IsolationControl(
                control="NetworkPolicy: no egress, ingress from the platform gateway only",
                applied=bool(deny),
                detail=", ".join(p.metadata.name for p in deny) or "none",
            ),
            IsolationControl(
                control="ResourceQuota on the namespace",
                applied=bool(quotas),
                detail="; ".join(str(q.spec.hard) for q in quotas) or "none",
            ),
            IsolationControl(
                control="LimitRange on the namespace", applied=bool(limits), detail=f"{len(limits)} range(s)"
            ),
        ]
        pod = self._server_pod(namespace)
        if pod is None:
            return controls
        container = next(c for c in pod.spec.containers if c.name == m.SERVER)
        ctx, pod_ctx = container.security_context, pod.spec.security_context
        caps = ctx.capabilities.drop if ctx and ctx.capabilities else []
        seccomp = pod_ctx.seccomp_profile.type if pod_ctx and pod_ctx.seccomp_profile else None
        mounts = {v.mount_path: v.read_only for v in container.volume_mounts or []}
        controls += [
            IsolationControl(
                control="read-only root filesystem",
                applied=bool(ctx.read_only_root_filesystem),
                detail="writable: /tmp, /dev/shm (tmpfs)",
            ),
            IsolationControl(
                control="non-root user",
                applied=bool(pod_ctx.run_as_non_root),
                detail=f"uid {pod_ctx.run_as_user}",
            ),
            IsolationControl(
                control="all capabilities dropped", applied="ALL" in (caps or []), detail=str(caps)
            ),
            IsolationControl(
                control="no privilege escalation",
                applied=ctx.allow_privilege_escalation is False,
                detail="allowPrivilegeEscalation: false",
            ),
            IsolationControl(
                control="seccomp RuntimeDefault", applied=seccomp == "RuntimeDefault", detail=str(seccomp)
            ),
            IsolationControl(
                control="no service-account token",
                applied=pod.spec.automount_service_account_token is False,
                detail="automountServiceAccountToken: false",
            ),
            IsolationControl(
                control="memory and CPU limits",
                applied=bool(container.resources.limits),
                detail=str(container.resources.limits),
            ),
            IsolationControl(
                control="model mounted read-only",
                applied=mounts.get(m.MODEL_MOUNT) is True,
                detail=m.MODEL_MOUNT,
            ),
        ]
        return controls
