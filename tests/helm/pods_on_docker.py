"""Run a rendered chart's pods on a Docker engine the way a kubelet would run them.

Not a Kubernetes: no API server, no scheduler, no restarts beyond Docker's. What it does take
from each rendered pod is everything the chart relies on for its containers to work: command and
args, environment (values, secretKeyRef from the rendered Secrets, the pod's namespace through
fieldRef, ``$(VAR)`` expansion), the security context (user, group, fsGroup, read-only root,
every capability dropped, no privilege escalation), volumes (emptyDir and claims as fresh
directories owned by the pod's group, Secret and ConfigMap items as files with their modes),
init containers run to completion first, the containers of one pod sharing one network
namespace, Services as DNS names on a private network, and the readiness probes. So the chart's
pods run with the chart's own restrictions on a real engine when no kubelet with a pod network
is at hand (the local control plane's pods have loopback only).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


class PodFailed(AssertionError):
    pass


class PodsOnDocker:
    def __init__(self, client: Any, objects: list[dict[str, Any]], namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self.run_id = uuid.uuid4().hex[:8]
        self.labels = {"regsandbox.test": "pods-on-docker", "regsandbox.run": self.run_id}
        self.root = Path(tempfile.mkdtemp(prefix="regsandbox-pods-"))
        self.network = client.networks.create(f"rs-pods-{self.run_id}", labels=self.labels)
        self.secrets = {
            o["metadata"]["name"]: {k: base64.b64decode(v) for k, v in o.get("data", {}).items()}
            for o in objects
            if o["kind"] == "Secret"
        }
        self.config_maps = {
            o["metadata"]["name"]: {k: v.encode() for k, v in o.get("data", {}).items()}
            for o in objects
            if o["kind"] == "ConfigMap"
        }
        self.services = [o for o in objects if o["kind"] == "Service"]
        self.containers: dict[str, Any] = {}  # "<pod>/<container>" -> Docker container
        self.specs: dict[str, dict[str, Any]] = {}
        self.pod_network: dict[str, Any] = {}  # pod -> the container holding its network namespace

    # -- pods -------------------------------------------------------------------------------
    def start(self, name: str, template: dict[str, Any], init_timeout_s: float = 180.0) -> None:
        pod, labels = template["spec"], template["metadata"]["labels"]
        mounts_by_volume = self._volumes(name, pod)
        aliases = [
            s["metadata"]["name"]
            for s in self.services
            if all(labels.get(k) == v for k, v in s["spec"]["selector"].items())
        ]
        for init in pod.get("initContainers", []):
            container = self._run(name, pod, init, mounts_by_volume, network=self.network.name, aliases=[])
            result = container.wait(timeout=init_timeout_s)
            if result["StatusCode"] != 0:
                raise PodFailed(
                    f"{name}/{init['name']} exited {result['StatusCode']}: {self.logs(container)}"
                )
        first = None
        for spec in pod["containers"]:
            # A pod's containers share one network namespace (localhost), as in Kubernetes.
            network = self.network.name if first is None else f"container:{first.id}"
            container = self._run(name, pod, spec, mounts_by_volume, network=network, aliases=aliases)
            first = first or container
            self.pod_network.setdefault(name, container)
            self.containers[f"{name}/{spec['name']}"] = container
            self.specs[f"{name}/{spec['name']}"] = spec

    def _volumes(self, pod_name: str, pod: dict[str, Any]) -> dict[str, Path]:
        group = pod["securityContext"]["fsGroup"]
        found = {}
        for volume in pod.get("volumes", []):
            path = self.root / pod_name / volume["name"]
            path.mkdir(parents=True)
            if "emptyDir" in volume or "persistentVolumeClaim" in volume:
                os.chown(path, 0, group)
                path.chmod(0o2775)
            elif "secret" in volume or "configMap" in volume:
                source = volume.get("secret") or volume["configMap"]
                data = (
                    self.secrets[source["secretName"]]
                    if "secret" in volume
                    else self.config_maps[source["name"]]
                )
                for item in source.get("items") or [{"key": k, "path": k} for k in data]:
                    target = path / item["path"]
                    target.write_bytes(data[item["key"]])
                    os.chown(target, 0, group)
                    target.chmod(source.get("defaultMode", 0o644))
            # Projected service-account tokens have no meaning without an API server: left empty.
            found[volume["name"]] = path
        return found

    def _env(self, spec: dict[str, Any]) -> dict[str, str]:
        env: dict[str, str] = {}
        for var in spec.get("env", []):
            if "value" in var:
                env[var["name"]] = _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), var["value"])
            elif "secretKeyRef" in var["valueFrom"]:
                ref = var["valueFrom"]["secretKeyRef"]
                env[var["name"]] = self.secrets[ref["name"]][ref["key"]].decode()
            elif var["valueFrom"].get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
                env[var["name"]] = self.namespace
            else:
                raise PodFailed(f"env {var['name']}: {var['valueFrom']} is not supported here")
        return env

    def _run(
        self,
        pod_name: str,
        pod: dict[str, Any],
        spec: dict[str, Any],
        volumes: dict[str, Path],
        network: str,
        aliases: list[str],
    ) -> Any:
        pod_ctx, ctx = pod["securityContext"], spec["securityContext"]
        env = self._env(spec)
        expand = [_VAR.sub(lambda m: env.get(m.group(1), m.group(0)), a) for a in spec.get("args", [])]
        binds = {
            str(volumes[m["name"]]): {"bind": m["mountPath"], "mode": "ro" if m.get("readOnly") else "rw"}
            for m in spec.get("volumeMounts", [])
        }
        options: dict[str, Any] = {
            "image": spec["image"],
            "entrypoint": spec["command"],
            "command": expand,
            "environment": env,
            "user": f"{pod_ctx['runAsUser']}:{pod_ctx['runAsGroup']}",
            "group_add": [str(pod_ctx["fsGroup"])],
            "read_only": ctx["readOnlyRootFilesystem"],
            "cap_drop": ctx["capabilities"]["drop"],
            "security_opt": ["no-new-privileges:true"] if not ctx["allowPrivilegeEscalation"] else [],
            "volumes": binds,
            "labels": {**self.labels, "regsandbox.pod": pod_name},
            "name": f"rs-pods-{self.run_id}-{pod_name}-{spec['name']}",
            "detach": True,
            "network": network,
        }
        if network.startswith("container:"):
            options["network_mode"] = options.pop("network")
        container = self.client.containers.create(**options)
        if aliases and not network.startswith("container:"):
            self.network.disconnect(container)
            self.network.connect(container, aliases=aliases)
        container.start()
        return container

    # -- probes -----------------------------------------------------------------------------
    def _ready(self, key: str) -> bool:
        spec, container = self.specs[key], self.containers[key]
        probe = spec.get("readinessProbe")
        if probe is None:
            return True
        if "exec" in probe:
            return bool(container.exec_run(probe["exec"]["command"]).exit_code == 0)
        port = probe["httpGet"]["port"]
        if isinstance(port, str):
            port = next(p["containerPort"] for p in spec["ports"] if p["name"] == port)
        holder = self.pod_network[key.split("/")[0]]
        holder.reload()
        address = holder.attrs["NetworkSettings"]["Networks"][self.network.name]["IPAddress"]
        try:
            return (
                httpx.get(f"http://{address}:{port}{probe['httpGet']['path']}", timeout=3).status_code == 200
            )
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout_s: float) -> dict[str, float]:
        """Seconds until each container's readiness probe passed; fails on an exited container."""
        started, ready = time.monotonic(), {}
        while time.monotonic() - started < timeout_s:
            for key, container in self.containers.items():
                if key in ready:
                    continue
                container.reload()
                if container.status == "exited":
                    raise PodFailed(f"{key} exited: {self.logs(container)}")
                if self._ready(key):
                    ready[key] = round(time.monotonic() - started, 1)
            if len(ready) == len(self.containers):
                return ready
            time.sleep(1)
        waiting = sorted(set(self.containers) - set(ready))
        tails = {k: self.logs(self.containers[k]) for k in waiting}
        raise PodFailed(f"not ready after {timeout_s:.0f}s: {waiting}: {tails}")

    @staticmethod
    def logs(container: Any) -> str:
        return str(container.logs(tail=30).decode(errors="replace"))

    def close(self) -> None:
        for container in self.client.containers.list(
            all=True, filters={"label": f"regsandbox.run={self.run_id}"}
        ):
            container.remove(force=True)
        self.network.remove()
        shutil.rmtree(self.root, ignore_errors=True)
