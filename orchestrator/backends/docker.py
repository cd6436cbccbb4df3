"""Docker backend: one internal network and one hardened container per trial."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from orchestrator.backends import hostfirewall
from orchestrator.backends.attestation import ALL_PROBES, PROBE_SCRIPT
from orchestrator.backends.base import (
    LABEL_MANAGED,
    LABEL_TRIAL,
    Endpoint,
    IsolationControl,
    ResourceStats,
    Sandbox,
    SandboxBackend,
)
from orchestrator.errors import BackendError, BackendUnavailableError, SandboxTimeoutError
from orchestrator.settings import Settings, get_settings
from orchestrator.spec import Resources
from orchestrator.templates import Template, ensure_image

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

MODEL_MOUNT = "/model"
SHM_SIZE_MB = 16


def bridge_name(trial_id: str) -> str:
    # Linux interface names are at most 15 characters; a hash keeps them unique per trial.
    return "rs-" + hashlib.sha256(trial_id.encode()).hexdigest()[:12]


class DockerBackend(SandboxBackend):
    name = "docker"
    isolation_level = "container"
    required_probes = frozenset(ALL_PROBES)

    def __init__(self, settings: Settings | None = None, client: DockerClient | None = None) -> None:
        self.settings = settings or get_settings()
        self._client = client

    @property
    def client(self) -> DockerClient:
        if self._client is None:
            import docker
            import docker.errors

            try:
                kwargs: dict[str, Any] = (
                    {"base_url": self.settings.docker_host} if self.settings.docker_host else {}
                )
                self._client = docker.DockerClient(**kwargs) if kwargs else docker.from_env()
                self._client.ping()
            except docker.errors.DockerException as exc:
                self._client = None
                raise BackendUnavailableError(f"[docker] no Docker engine answers: {exc}") from exc
        return self._client

    def ping(self) -> None:
        self.client.ping()

    def _lost_engine(self, exc: BaseException) -> bool:
        import requests

        return isinstance(exc, requests.exceptions.ConnectionError)

    # -- lifecycle -------------------------------------------------------------------
    def _provision(self, trial_id: str, resources: Resources, labels: dict[str, str]) -> Sandbox:
        import docker.errors

        bridge = bridge_name(trial_id)
        try:
            network = self.client.networks.create(
                f"regsandbox-{trial_id}",
                driver="bridge",
                internal=True,
                labels=labels,
                options={
                    "com.docker.network.bridge.name": bridge,
                    "com.docker.network.bridge.enable_icc": "true",
                },
            )
        except docker.errors.APIError as exc:
            raise BackendError(f"[docker] trial {trial_id}: cannot create network: {exc}") from exc
        hostfirewall.block_host_access(bridge, trial_id)
        return Sandbox(
            trial_id=trial_id,
            backend=self.name,
            resources=resources,
            labels=labels,
            details={"network": network.name, "network_id": network.id, "bridge": bridge},
        )

    def _deploy(self, sandbox: Sandbox, template: Template, model_dir: Path) -> Endpoint:
        import docker.errors

        started = time.monotonic()
        image = ensure_image(template, self.settings, self.client)
        try:
            container = self.client.containers.run(
                image.tag,
                name=f"regsandbox-{sandbox.trial_id}",
                detach=True,
                volumes={str(model_dir): {"bind": MODEL_MOUNT, "mode": "ro"}},
                environment={"MODEL_DIR": MODEL_MOUNT, "PORT": str(template.port)},
                **self._hardening(sandbox),
            )
        except docker.errors.APIError as exc:
            raise BackendError(
                f"[docker] trial {sandbox.trial_id}: cannot start model server: {exc}"
            ) from exc
        address = self._address(container, sandbox)
        url = f"http://{address}:{template.port}"
        self._wait_healthy(container, url + template.health_path, sandbox.trial_id, started)
        return Endpoint(
            url=url,
            health_path=template.health_path,
            container=container.id,
            image=image.tag,
            image_digest=image.id,
            ready_s=time.monotonic() - started,
        )

    def _hardening(self, sandbox: Sandbox) -> dict[str, Any]:
        """Container options every process in the sandbox runs under (model server and probes)."""
        res = sandbox.resources
        memory = f"{res.memory_mb}m"
        return {
            "network": sandbox.details["network"],
            "labels": sandbox.labels,
            "user": self.settings.sandbox_user,
            "read_only": True,
            "tmpfs": {"/tmp": f"rw,noexec,nosuid,nodev,size={self.settings.tmpfs_size_mb}m"},  # noqa: S108
            # /dev/shm stays (multiprocessing and joblib need POSIX semaphores) but small and explicit.
            "shm_size": f"{SHM_SIZE_MB}m",
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges:true"],
            "mem_limit": memory,
            "memswap_limit": memory,  # no swap: the memory limit is the limit
            "nano_cpus": int(res.cpus * 1e9),
            "pids_limit": self.settings.pids_limit,
            "ipc_mode": "private",
        }

    @property
    def pids_limit(self) -> int:
        return self.settings.pids_limit

    def _run_probes(self, sandbox: Sandbox, args_json: str) -> str:
        import docker.errors

        script = PROBE_SCRIPT.read_text(encoding="utf-8")
        try:
            output = self.client.containers.run(
                self.settings.base_image,
                ["python3", "-c", script, args_json],
                name=f"regsandbox-{sandbox.trial_id}-probe",
                remove=True,
                stdout=True,
                stderr=True,
                **self._hardening(sandbox),
            )
        except docker.errors.ContainerError as exc:
            return (exc.stderr or b"").decode(errors="replace")
        except docker.errors.APIError as exc:
            raise BackendError(
                f"[docker] trial {sandbox.trial_id}: cannot run isolation probes: {exc}"
            ) from exc
        return bytes(output).decode(errors="replace")

    def _address(self, container: Container, sandbox: Sandbox) -> str:
        container.reload()
        networks = container.attrs["NetworkSettings"]["Networks"]
        address = networks.get(sandbox.details["network"], {}).get("IPAddress")
        if not address:
            raise BackendError(f"[docker] trial {sandbox.trial_id}: model server got no address")
        return str(address)

    def _wait_healthy(self, container: Container, url: str, trial_id: str, started: float) -> None:
        deadline = started + self.settings.health_timeout_s
        delay = 0.02
        with httpx.Client(timeout=1.0) as http:
            while time.monotonic() < deadline:
                try:
                    if http.get(url).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                container.reload()
                if container.status in ("exited", "dead"):
                    tail = container.logs(tail=40).decode(errors="replace")
                    raise BackendError(
                        f"[docker] trial {trial_id}: model server exited during start:\n{tail}"
                    )
                time.sleep(delay)
                delay = min(delay * 1.5, 0.25)
        tail = container.logs(tail=40).decode(errors="replace")
        raise SandboxTimeoutError(
            f"[docker] trial {trial_id}: model server not healthy after "
            f"{self.settings.health_timeout_s:.0f}s:\n{tail}"
        )

    def _containers(self, trial_id: str) -> list[Container]:
        return list(self.client.containers.list(all=True, filters={"label": f"{LABEL_TRIAL}={trial_id}"}))

    def _teardown(self, trial_id: str) -> list[str]:
        import docker.errors

        removed = []
        for container in self._containers(trial_id):
            try:
                container.remove(force=True, v=True)
                removed.append(f"container {container.name}")
            except docker.errors.NotFound:
                pass
        for network in self.client.networks.list(filters={"label": f"{LABEL_TRIAL}={trial_id}"}):
            try:
                network.remove()
                removed.append(f"network {network.name}")
            except docker.errors.NotFound:
                pass
        for volume in self.client.volumes.list(filters={"label": f"{LABEL_TRIAL}={trial_id}"}):
            try:
                volume.remove(force=True)
                removed.append(f"volume {volume.name}")
            except docker.errors.NotFound:
                pass
        removed += hostfirewall.unblock(trial_id)
        return removed

    def _remaining(self, trial_id: str) -> list[str]:
        flt = {"label": f"{LABEL_TRIAL}={trial_id}"}
        left = [f"container {c.name}" for c in self.client.containers.list(all=True, filters=flt)]
        left += [f"network {n.name}" for n in self.client.networks.list(filters=flt)]
        left += [f"volume {v.name}" for v in self.client.volumes.list(filters=flt)]
        left += [f"iptables rule {' '.join(r)}" for r in hostfirewall.rules_for(trial_id)]
        return left

    def _owned(self) -> dict[str, dict[str, str]]:
        flt = {"label": f"{LABEL_MANAGED}=true"}
        owned: dict[str, dict[str, str]] = {}
        objects: list[Any] = [*self.client.containers.list(all=True, filters=flt)]
        objects += self.client.networks.list(filters=flt)
        objects += self.client.volumes.list(filters=flt)
        for obj in objects:
            labels = obj.attrs.get("Labels") or obj.attrs.get("Config", {}).get("Labels") or {}
            if LABEL_TRIAL in labels:
                owned.setdefault(labels[LABEL_TRIAL], labels)
        # A rule whose network is already gone (crash between the two removals) is still ours.
        for trial_id in hostfirewall.owned_trials() - owned.keys():
            owned[trial_id] = {LABEL_TRIAL: trial_id}
        return owned

    # -- observation -----------------------------------------------------------------
    def _container(self, sandbox: Sandbox) -> Container | None:
        found = self._containers(sandbox.trial_id)
        return found[0] if found else None

    def stats(self, sandbox: Sandbox) -> ResourceStats:
        container = self._container(sandbox)
        if container is None:
            return ResourceStats(running=False)
        container.reload()
        state = container.attrs.get("State", {})
        if container.status != "running":
            return ResourceStats(running=False, oom_killed=bool(state.get("OOMKilled")))
        # one_shot: a single sample in milliseconds (the default waits ~2 s for a second one);
        # CPU percentages are derived from successive samples by the caller.
        raw = container.stats(stream=False, one_shot=True)
        memory = raw.get("memory_stats", {})
        total_ns = raw.get("cpu_stats", {}).get("cpu_usage", {}).get("total_usage")
        return ResourceStats(
            cpu_seconds=total_ns / 1e9 if total_ns is not None else None,
            memory_bytes=memory.get("usage"),
            memory_limit_bytes=memory.get("limit"),
            pids=raw.get("pids_stats", {}).get("current"),
            oom_killed=bool(state.get("OOMKilled")),
        )

    def refused_connections(self, sandbox: Sandbox) -> dict[str, int] | None:
        return hostfirewall.refused_counts(sandbox.trial_id)

    def processes(self, sandbox: Sandbox) -> list[str]:
        import docker.errors

        container = self._container(sandbox)
        if container is None:
            return []
        try:
            top = container.top(ps_args="-eo pid,ppid,sid,user,args")
        except docker.errors.APIError:
            return []
        return [" ".join(str(v) for v in row) for row in top.get("Processes") or []]

    def logs(self, sandbox: Sandbox, tail: int = 200) -> str:
        container = self._container(sandbox)
        return container.logs(tail=tail).decode(errors="replace") if container else ""

    def isolation_controls(self, sandbox: Sandbox) -> list[IsolationControl]:
        container = self._container(sandbox)
        network = self.client.networks.get(sandbox.details["network_id"])
        controls = [
            IsolationControl(
                control="network: internal (no egress, no other sandbox)",
                applied=bool(network.attrs.get("Internal")),
                detail=network.name,
            ),
            IsolationControl(
                control="host services unreachable (bridge INPUT firewall)",
                applied=bool(hostfirewall.rules_for(sandbox.trial_id)),
                detail=sandbox.details["bridge"],
            ),
        ]
        if container is None:
            return controls
        host = container.attrs["HostConfig"]
        config = container.attrs["Config"]
        mounts = container.attrs.get("Mounts", [])
        user = str(config.get("User") or "")
        controls += [
            IsolationControl(
                control="read-only root filesystem",
                applied=bool(host.get("ReadonlyRootfs")),
                detail="writable: "
                + ", ".join(f"{k} ({v})" for k, v in (host.get("Tmpfs") or {}).items())
                + f", /dev/shm ({(host.get('ShmSize') or 0) // 2**20} MiB, noexec,nosuid,nodev)",
            ),
            IsolationControl(
                control="non-root user", applied=bool(user) and not user.startswith("0"), detail=user
            ),
            IsolationControl(
                control="all capabilities dropped",
                applied="ALL" in (host.get("CapDrop") or []),
                detail=str(host.get("CapDrop")),
            ),
            IsolationControl(
                control="no-new-privileges",
                applied=any("no-new-privileges" in s for s in host.get("SecurityOpt") or []),
                detail=str(host.get("SecurityOpt")),
            ),
            IsolationControl(
                control="memory limit (no swap)",
                applied=bool(host.get("Memory")),
                detail=f"{host.get('Memory', 0) // 2**20} MiB",
            ),
            IsolationControl(
                control="CPU limit",
                applied=bool(host.get("NanoCpus")),
                detail=f"{(host.get('NanoCpus') or 0) / 1e9:g} CPUs",
            ),
            IsolationControl(
                control="PID limit", applied=bool(host.get("PidsLimit")), detail=str(host.get("PidsLimit"))
            ),
            IsolationControl(
                control="model mounted read-only",
                applied=all(not m.get("RW") for m in mounts) and bool(mounts),
                detail=", ".join(f"{m.get('Destination')} (ro)" for m in mounts if not m.get("RW")),
            ),
        ]
        return controls
