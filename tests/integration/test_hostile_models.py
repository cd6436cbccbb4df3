"""Hostile candidate models, run as whole trials, are contained; the exit report says what happened.

Each candidate (``tests/hostile/hostile_model.py``) attacks the sandbox it is served in. The
attacks are shown to be contained from the host's side, never on the model's word alone:

* a TCP+UDP listener on every host address (0.0.0.0) sees no connection and no datagram;
* a stand-in for the internet (a server on Docker's ordinary, routed bridge) sees nothing;
* a packet capture on every host interface sees the sandbox's outward packets (to the
  documentation addresses, its DNS queries, also those Docker's resolver forwards for it)
  only on the sandbox's own bridge, where the firewall refuses them;
* a bystander sandbox of another trial stays healthy, serves only the test's own requests
  and answers exactly as before;
* the host's files, the other trial's work dir and the candidate's own model copy are
  byte-for-byte unchanged, and secrets in them never appear in the captured traffic;
* a watcher reads the sandbox from the host while the trial runs (cgroup counters, ``/proc``,
  the container's writable layer, the engine's events) to see what the limits did;
* no process of the trial survives its teardown.

Every "not reached" has a positive control (the same target IS reachable from an ordinary
container; the capture does see the attempts; the watcher does see the attack's processes),
so nothing passes because a target was down or an observer blind. Non-destructive attacks
share one trial; each destructive one (fork bomb, memory bomb, disk fill, daemon) has its own.

Assertions under ``assert_recorded`` are what the exit report SHOULD record for a regulator
and the platform does not record yet: they fail until it does (see each message).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from orchestrator.backends.docker import DockerBackend, bridge_name
from orchestrator.model_artifacts import tree_digest
from orchestrator.reports import load_report, verify
from orchestrator.reports.signing import PRIVATE_KEY_NAME, PUBLIC_KEY_NAME, load_or_create_key
from orchestrator.run import run_trial
from orchestrator.settings import Settings
from orchestrator.spec import Resources, TrialSpec, parse_spec
from orchestrator.templates import load_template
from orchestrator.trial_records import TrialOutcome
from tests.hostile.build import FEATURES, save_hostile_model, save_witness_model

pytestmark = [pytest.mark.docker, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "trials" / "diabetes-risk.yaml"
# (real, effective, saved, filesystem uid; effective capabilities) of a sandbox process.
SANDBOX_IDENTITY = ("10001 10001 10001 10001", "0000000000000000")
MEMORY_MB = 512
# RFC 5737 documentation addresses: never routed on the internet, so even an escape reaches nobody.
DOCUMENTATION_ADDRESSES = ["198.51.100.1", "203.0.113.1"]
# Host files a model must neither change nor read (the engine-managed copies inside the
# container are separate files; these are the host's own).
HOST_FILES = [
    Path(p) for p in ("/etc/passwd", "/etc/shadow", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf")
]
EVALUATION_ROWS = [
    {"age": 34, "sex": "female", "bmi": 22.5, "systolic_bp": 118.0, "smoking": 0, "family_history": 0},
    {"age": 61, "sex": "male", "bmi": 31.2, "systolic_bp": 151.0, "smoking": 1, "family_history": 1},
    {"age": 47, "sex": "female", "bmi": 27.9, "systolic_bp": 133.0, "smoking": 0, "family_history": 1},
]


# -- helpers -------------------------------------------------------------------------------
def host_addresses() -> list[str]:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True)
    return sorted({line.split()[3].split("/")[0] for line in out.stdout.splitlines() if " lo " not in line})


def interface_address(name: str) -> str:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", name], capture_output=True, text=True, check=True)
    return out.stdout.split()[3].split("/")[0]


def digest(path: Path) -> str:
    if path.is_dir():
        return tree_digest(path)
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable: {exc.strerror}"


def snapshot(paths: list[Path]) -> dict[str, str]:
    return {str(p): digest(p) for p in paths}


def assert_recorded(*expected: tuple[bool, str]) -> None:
    """Evidence a regulator needs in the exit report: each ``(recorded, what)`` must hold.

    Kept apart from the containment assertions (and last in each test) so that a platform that
    contains an attack but does not yet say so fails here, with every missing record named.
    """
    missing = [what for recorded, what in expected if not recorded]
    assert not missing, "NOT RECORDED (platform gap): the exit report should record " + "; ".join(missing)


def hostile_spec(
    name: str, model_dir: Path, *, batch_size: int = 50, concurrency: int = 4, memory_mb: int = MEMORY_MB
) -> TrialSpec:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["name"] = name
    data["model"]["uri"] = str(model_dir)
    data["data"]["synthetic"]["rows"] = 500
    data["resources"] = {"cpus": 1.0, "memory_mb": memory_mb, "timeout_s": 180}
    data["workload"] = {"batch_size": batch_size, "concurrency": concurrency}
    return parse_spec(data, "test")


def traffic_of(settings: Settings, outcome: TrialOutcome) -> tuple[str, list[dict[str, Any]]]:
    """The trial's captured traffic, raw (to search for leaks) and parsed."""
    path = settings.trials_dir / outcome.trial_id / "traffic.jsonl"
    raw = path.read_text(encoding="utf-8") if path.is_file() else ""
    return raw, [json.loads(line) for line in raw.splitlines() if line.strip()]


def model_evidence(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The model's own account of its attack, from the first answer that carries one."""
    for record in records:
        predictions = (record.get("response") or {}).get("predictions") or []
        if predictions and isinstance(predictions[0], dict) and "evidence" in predictions[0]:
            return json.loads(predictions[0]["evidence"])
    return {}


def check_reported(outcome: TrialOutcome, settings: Settings, docker_client) -> Any:  # type: ignore[no-untyped-def]
    """Whatever the attack did, the trial ended with a signed report and nothing left behind."""
    assert outcome.report["json"], outcome
    report = load_report(outcome.report["json"])
    assert report.status in ("completed", "failed")
    if report.status == "failed":
        assert report.error is not None and report.error.message
    assert report.teardown.verified and outcome.teardown_verified, report.teardown
    assert "teardown" in [e.kind for e in report.events]
    assert verify(outcome.report["json"], outcome.report["signature"], settings.keys_dir / PUBLIC_KEY_NAME)
    flt = {"label": f"regsandbox.trial_id={outcome.trial_id}"}
    assert not docker_client.containers.list(all=True, filters=flt)
    assert not docker_client.networks.list(filters=flt)
    return report


def reached(attempts: dict[str, str]) -> list[str]:
    """The attempts (as the model reported them) that got a connection, an answer or an address."""
    return [
        k for k, v in attempts.items() if v == "connected" or v.startswith(("answered", "HTTP", "resolved"))
    ]


def isolation_events(report: Any, event: str) -> list[Any]:
    return [e for e in report.events if e.kind == "isolation_event" and e.detail.get("event") == event]


def metric(report: Any, key: str) -> float | None:
    return report.metrics.values.get(key) if report.metrics else None


def host_processes_with(marker: str) -> list[int]:
    """Host processes (any namespace) whose command line or name carries ``marker``."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            # The name first: reading a command line waits on the process's memory map, which a
            # process that forks without pause keeps busy.
            with open(f"/proc/{entry.name}/comm", "rb") as handle:
                if marker.encode() in handle.read():
                    found.append(int(entry.name))
                    continue
            with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                if marker.encode() in handle.read():
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def engine_events(docker_client, container_id: str | None, since: float) -> list[str]:  # type: ignore[no-untyped-def]
    """What the Docker engine saw happen to the container (oom, die with exit code ...)."""
    if not container_id:
        return []
    events = docker_client.events(
        since=int(since) - 1, until=int(time.time()) + 1, filters={"container": container_id}, decode=True
    )
    out = []
    for event in events:
        action = event.get("status") or event.get("Action") or ""
        code = (event.get("Actor") or {}).get("Attributes", {}).get("exitCode")
        out.append(f"{action} {code}" if code is not None else action)
    return out


def host_is_fine(docker_client) -> None:  # type: ignore[no-untyped-def]
    """The host still forks, and its engine still answers."""
    assert subprocess.run(["true"], check=False).returncode == 0
    assert docker_client.ping()


# -- watching a sandbox from the host ------------------------------------------------------
def _cgroup_dir(pid: int, controller: str) -> Path | None:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2
            return Path("/sys/fs/cgroup") / path.lstrip("/")
        if controller in controllers.split(","):
            return Path("/sys/fs/cgroup") / controllers / path.lstrip("/")
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


class SandboxWatch:
    """Reads a running trial's model-server container from the host while the trial runs.

    What it records is the test's own evidence: PID and memory cgroup counters, the sizes of
    the container's writable mounts, the identity of every process in the container, files in
    its writable layer, the engine-managed host files bind-mounted into it, and any host
    process carrying ``marker``.
    """

    def __init__(self, docker_client, trial_name: str, marker: str | None = None) -> None:  # type: ignore[no-untyped-def]
        self._docker = docker_client
        self._name = re.compile(rf"^regsandbox-{re.escape(trial_name)}-[0-9a-f]{{8}}$")
        self._marker = marker
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{trial_name}", daemon=True)
        self.started = time.time()
        self.container_id: str | None = None
        self.network = ""  # the sandbox's address/prefix on its trial network
        self.gateway = ""  # the host's address on that network
        self.pids_peak = 0
        self.pids_max = ""
        self.memory_peak = 0
        self.memory_limit = 0
        self.mounts: dict[str, dict[str, int]] = {}
        self.identities: set[tuple[str, str]] = set()
        self.layer_files: set[str] = set()
        self.engine_files: dict[str, str] = {}
        self.marked_engine_files: set[str] = set()
        self.marker_pids: set[int] = set()
        self._pid = 0
        self._upper: Path | None = None
        self._pids_dir: Path | None = None
        self._memory_dir: Path | None = None
        self._engine_files: list[Path] = []

    def __enter__(self) -> SandboxWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _find(self) -> None:
        for container in self._docker.containers.list(filters={"label": "regsandbox.managed=true"}):
            if self._name.match(container.name) and container.attrs["State"].get("Pid"):
                attrs = container.attrs
                self.container_id = container.id
                self._pid = attrs["State"]["Pid"]
                for net in attrs["NetworkSettings"]["Networks"].values():
                    self.network = f"{net['IPAddress']}/{net['IPPrefixLen']}"
                    self.gateway = net["Gateway"]
                upper = (attrs.get("GraphDriver") or {}).get("Data", {}).get("UpperDir")
                self._upper = Path(upper) if upper else None
                self._pids_dir = _cgroup_dir(self._pid, "pids")
                self._memory_dir = _cgroup_dir(self._pid, "memory")
                self._engine_files = [
                    Path(attrs[k]) for k in ("HostsPath", "ResolvConfPath", "HostnamePath") if attrs.get(k)
                ]
                return

    def _counters(self) -> None:
        assert self._pids_dir is not None and self._memory_dir is not None
        current = _read(self._pids_dir / "pids.current")
        if current.isdigit():
            self.pids_peak = max(self.pids_peak, int(current))
        self.pids_max = _read(self._pids_dir / "pids.max") or self.pids_max
        peak = _read(self._memory_dir / "memory.max_usage_in_bytes") or _read(
            self._memory_dir / "memory.peak"
        )
        if peak.isdigit():
            self.memory_peak = max(self.memory_peak, int(peak))
        limit = _read(self._memory_dir / "memory.limit_in_bytes") or _read(self._memory_dir / "memory.max")
        if limit.isdigit():
            self.memory_limit = int(limit)

    def _details(self) -> None:
        assert self._pids_dir is not None
        for mount in ("/tmp", "/dev/shm"):
            try:
                stat = os.statvfs(f"/proc/{self._pid}/root{mount}")
            except OSError:
                continue
            seen = self.mounts.setdefault(mount, {"size": 0, "used_peak": 0})
            seen["size"] = stat.f_blocks * stat.f_frsize
            seen["used_peak"] = max(seen["used_peak"], (stat.f_blocks - stat.f_bfree) * stat.f_frsize)
        procs = _read(self._pids_dir / "cgroup.procs").split()
        for pid in procs[:64]:  # enough to see who runs there, cheap even under a fork bomb
            status = dict(
                line.split(":", 1) for line in _read(Path(f"/proc/{pid}/status")).splitlines() if ":" in line
            )
            if status and not status.get("Name", "").strip().startswith("runc"):
                self.identities.add((" ".join(status["Uid"].split()), status["CapEff"].strip()))
        if self._upper is not None and self._upper.is_dir():
            for root, _, files in os.walk(self._upper):
                self.layer_files.update(os.path.join(root, f) for f in files)
        # The engine itself rewrites these files (addresses, resolvers); what matters is that the
        # sandbox's own writes never land in them.
        for path in self._engine_files:
            text = _read(path)
            if text:
                self.engine_files[str(path)] = text
                if self._marker and self._marker in text:
                    self.marked_engine_files.add(str(path))

    def _run(self) -> None:
        # Counters are cheap and change fast: every round. Walking processes and files is slower
        # (and slower still under a fork bomb): every fifth round.
        rounds = 0
        while not self._stop.is_set():
            try:
                if self.container_id is None:
                    self._find()
                else:
                    self._counters()
                    if rounds % 5 == 0:
                        self._details()
                if self._marker and rounds % 5 == 0:
                    self.marker_pids.update(host_processes_with(self._marker))
            except Exception:  # noqa: S110 - the container may vanish mid-read (OOM kill, teardown)
                pass
            rounds += 1
            self._stop.wait(0.2)


# -- capturing packets on every host interface ---------------------------------------------
ETH_P_IP = 0x0800
SOL_PACKET = 263
PACKET_STATISTICS = 6
SO_RCVBUFFORCE = 33
SANDBOX_BRIDGE_PREFIX = bridge_name("any")[:3]  # every sandbox bridge is named rs-<hash>


class Capture:
    """Sees every IPv4 packet on every host interface (AF_PACKET) and keeps the hostile ones.

    Hostile: a UDP datagram carrying the model's nonce (its DNS queries name it), or any packet
    to one of ``addresses`` (the internet's stand-ins, the other sandbox). Each is noted with
    the interface it was seen on, the bridge that interface belongs to and its source. The
    sandbox's own bridge is where its attempts are seen and refused; see ``escaped``.
    """

    def __init__(self, nonce: str, addresses: list[str]) -> None:
        self._nonce = nonce.encode()
        self._addresses = {socket.inet_aton(a) for a in addresses}
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
        # A large buffer (forced past rmem_max, as root) so that a busy host loses no packet.
        self._sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
        self._sock.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self.seen: set[tuple[str, str, str, str]] = set()  # (interface, its bridge, source, what)
        self.dropped = 0

    def __enter__(self) -> Capture:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        _, self.dropped = struct.unpack("II", self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
        self._sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                packet, address = self._sock.recvfrom(65535)
            except OSError:
                continue
            destination = packet[16:20]
            if destination in self._addresses:
                what = f"to {socket.inet_ntoa(destination)}"
            elif packet[9] == socket.IPPROTO_UDP and self._nonce in packet:
                what = f"udp with nonce to {socket.inet_ntoa(destination)}"
            else:
                continue
            interface = address[0]
            try:
                bridge = os.path.basename(os.readlink(f"/sys/class/net/{interface}/master"))
            except OSError:
                bridge = interface
            self.seen.add((interface, bridge, socket.inet_ntoa(packet[12:16]), what))

    def escaped(self, own_bridge: str, own_network: str, other_bridge: str) -> list[tuple[str, ...]]:
        """Hostile packets seen off the sandbox's own bridge.

        Other trials may run on this engine at the same time, and their isolation probes also
        knock on the documentation addresses, each on its own sandbox bridge: those packets are
        theirs. Anything on a host interface that is not a sandbox bridge, on the other
        sandbox's bridge, or from this sandbox's network on any other bridge, got out.
        """
        network = ipaddress.ip_network(own_network, strict=False)
        out = []
        for seen in self.seen:
            interface, bridge, source, what = seen
            if bridge == own_bridge:
                continue
            ours = ipaddress.ip_address(source) in network or "nonce" in what
            if not bridge.startswith(SANDBOX_BRIDGE_PREFIX) or bridge == other_bridge or ours:
                out.append(seen)
        return sorted(out)


# -- fixtures ------------------------------------------------------------------------------
class Listener:
    """A TCP and a UDP socket on the same port of every host address (0.0.0.0)."""

    def __init__(self) -> None:
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("0.0.0.0", 0))  # noqa: S104 - a careless host service listens everywhere
        self.tcp.listen(64)
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("0.0.0.0", self.port))  # noqa: S104
        self.seen: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=f, daemon=True) for f in (self._accept, self._receive)]
        for thread in self._threads:
            thread.start()

    def _accept(self) -> None:
        self.tcp.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, peer = self.tcp.accept()
            except OSError:
                continue
            self.seen.append(f"tcp from {peer[0]}")
            conn.close()

    def _receive(self) -> None:
        self.udp.settimeout(0.1)
        while not self._stop.is_set():
            try:
                _, peer = self.udp.recvfrom(4096)
            except OSError:
                continue
            self.seen.append(f"udp from {peer[0]}")

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self.tcp.close()
        self.udp.close()


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    found = Listener()
    yield found
    found.close()


OUTSIDE_SERVER = """
import socket, threading
def udp():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 8053))
    while True:
        print("udp from", u.recvfrom(4096)[1][0], flush=True)
threading.Thread(target=udp, daemon=True).start()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8000)); s.listen(16)
print("ready", flush=True)
while True:
    c, a = s.accept(); print("tcp from", a[0], flush=True); c.close()
"""


@pytest.fixture(scope="module")
def outside(docker_client, platform_home: Path) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """A stand-in for the internet: a server on Docker's ordinary (routed) bridge network."""
    image = Settings(home=platform_home).base_image
    container = docker_client.containers.run(
        image, ["python3", "-c", OUTSIDE_SERVER], detach=True, labels={"regsandbox.test": "hostile-outside"}
    )
    try:
        deadline = time.monotonic() + 30
        while b"ready" not in container.logs() and time.monotonic() < deadline:
            time.sleep(0.1)
        container.reload()
        yield {"container": container, "address": container.attrs["NetworkSettings"]["IPAddress"]}
    finally:
        container.remove(force=True)


def outside_saw(outside: dict[str, Any]) -> list[str]:
    lines = outside["container"].logs().decode().splitlines()
    return [line for line in lines if line.startswith(("tcp from", "udp from"))]


CONTROL_CLIENT = """
import json, socket, sys
out = {}
for host, port in json.loads(sys.argv[1]):
    s = socket.socket(); s.settimeout(3)
    try:
        s.connect((host, port)); out[f"tcp {host}:{port}"] = "connected"
    except OSError as exc:
        out[f"tcp {host}:{port}"] = type(exc).__name__
    s.close()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(b"control", (host, port if port != 8000 else 8053)); u.close()
print(json.dumps(out))
"""


class Bystander:
    """Another trial's sandbox, serving the witness model, with a work dir holding a secret."""

    def __init__(self, docker_client, settings: Settings) -> None:  # type: ignore[no-untyped-def]
        self.trial_id = f"hostile-bystander-{uuid.uuid4().hex[:8]}"
        self.workdir = settings.trials_dir / self.trial_id
        self.secret = f"bystander-secret-{uuid.uuid4().hex}"
        (self.workdir / "model").mkdir(parents=True)
        (self.workdir / "secret.txt").write_text(self.secret + "\n")
        (self.workdir / "data.csv").write_text(f"case_id,note\nc1,{self.secret}\n")
        self.model = save_witness_model(self.workdir / "model" / "witness")
        self.backend = DockerBackend(settings)
        self._docker = docker_client
        self.served = 0

    def start(self) -> None:
        self.sandbox = self.backend.provision(self.trial_id, Resources(cpus=0.5, memory_mb=384))
        self.endpoint = self.backend.deploy(self.sandbox, load_template("mlflow-pyfunc"), self.model)
        self.container = self._docker.containers.get(self.endpoint.container)
        self.scores = self._ask()

    @property
    def address(self) -> str:
        url = httpx.URL(self.endpoint.url)
        return f"{url.host}:{url.port}"

    def _ask(self) -> list[float]:
        body = {
            "dataframe_split": {
                "columns": list(FEATURES),
                "data": [list(r.values()) for r in EVALUATION_ROWS],
            }
        }
        answer = httpx.post(self.endpoint.url + "/invocations", json=body, timeout=10)
        assert answer.status_code == 200, answer.text
        predictions = answer.json()["predictions"]
        self.served += 1
        # The witness counts every request it served: one more than the test sent means that
        # somebody else got a request through to it.
        assert {p["served"] for p in predictions} == {self.served}, (predictions, self.served)
        return [p["score"] for p in predictions]

    def assert_unaffected(self) -> None:
        self.container.reload()
        state = self.container.attrs["State"]
        assert state["Status"] == "running" and not state["OOMKilled"], state
        assert self.container.attrs["RestartCount"] == 0
        assert httpx.get(self.endpoint.url + "/health", timeout=5).status_code == 200
        assert self._ask() == self.scores


@pytest.fixture(scope="module")
def bystander(docker_client, platform_home: Path) -> Iterator[Bystander]:  # type: ignore[no-untyped-def]
    settings = Settings(home=platform_home)
    settings.ensure_dirs()
    found = Bystander(docker_client, settings)
    try:
        found.start()
        yield found
    finally:
        found.backend.teardown(found.trial_id)


@pytest.fixture()
def protected(settings: Settings, bystander: Bystander) -> list[Path]:
    """Host files no trial may change: the host's own, the signing key, the other trial's dir."""
    load_or_create_key(settings.keys_dir)  # exists before the model runs, so reading it is a real try
    return [*HOST_FILES, settings.keys_dir / PRIVATE_KEY_NAME, bystander.workdir]


def run_watched(
    docker_client, spec: TrialSpec, marker: str | None = None
) -> tuple[TrialOutcome, SandboxWatch]:  # type: ignore[no-untyped-def]
    with SandboxWatch(docker_client, spec.name, marker) as watch:
        outcome = run_trial(spec)
    return outcome, watch


# -- (a)-(e), (i): probes in one trial -----------------------------------------------------
def test_probing_model_reaches_nothing_reads_nothing_writes_nothing_gains_nothing(
    settings: Settings,
    prefect_harness: None,
    docker_client,  # type: ignore[no-untyped-def]
    listener: Listener,
    outside: dict[str, Any],
    bystander: Bystander,
    protected: list[Path],
    tmp_path: Path,
) -> None:
    nonce = uuid.uuid4().hex[:12]
    hosts = host_addresses()
    host_secret = settings.home / f"host-secret-{nonce}.txt"
    host_secret.write_text(f"host-secret-{uuid.uuid4().hex}\n")
    readme_line = max(_read(REPO / "README.md").splitlines(), key=len)
    private_key = (settings.keys_dir / PRIVATE_KEY_NAME).read_text().splitlines()[1]
    read_paths = [
        "/model/MLmodel",  # allowed: shows the model can read and report what it read
        "/work",
        str(REPO / "README.md"),
        "/root",
        "/var/run/docker.sock",
        "/run/docker.sock",
        "/etc/shadow",
        "/etc/hostname",
        str(settings.home),
        str(settings.trials_dir),
        str(host_secret),
        str(settings.keys_dir / PRIVATE_KEY_NAME),
        str(settings.home / "mlflow.db"),
        str(bystander.workdir),
        str(bystander.workdir / "secret.txt"),
        str(bystander.workdir / "data.csv"),
    ]
    model = save_hostile_model(
        tmp_path / "probes",
        "probes",
        nonce=nonce,
        listener_port=listener.port,
        host_addresses=hosts,
        egress=[*[[a, 443] for a in DOCUMENTATION_ADDRESSES], [outside["address"], 8000]],
        udp_egress=[*[[a, 53] for a in DOCUMENTATION_ADDRESSES], [outside["address"], 8053]],
        dns_names=["example.com", f"{nonce}.exfil.example.com", bystander.container.name],
        other_sandbox=bystander.address,
        other_sandbox_name=bystander.container.name,
        read_paths=read_paths,
    )

    # Positive controls: from an ordinary container, the host listener answers on every host
    # address (TCP and UDP) and the stand-in for the internet answers too.
    targets = [[h, listener.port] for h in hosts] + [[outside["address"], 8000]]
    control = docker_client.containers.run(
        settings.base_image,
        ["python3", "-c", CONTROL_CLIENT, json.dumps(targets)],
        remove=True,
        labels={"regsandbox.test": "hostile-control"},
    )
    assert set(json.loads(control.decode()).values()) == {"connected"}, control
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (
        len(listener.seen) < 2 * len(hosts) or len(outside_saw(outside)) < 2
    ):
        time.sleep(0.05)
    assert sum(s.startswith("tcp") for s in listener.seen) == len(hosts), listener.seen
    assert sum(s.startswith("udp") for s in listener.seen) == len(hosts), listener.seen
    outside_before = outside_saw(outside)
    assert len(outside_before) == 2, outside_before
    listener.seen.clear()
    before = snapshot(protected)

    watched = [*DOCUMENTATION_ADDRESSES, outside["address"], bystander.address.split(":")[0]]
    with Capture(nonce, watched) as capture:
        outcome, watch = run_watched(docker_client, hostile_spec("hostile-probes", model), marker=nonce)

    report = check_reported(outcome, settings, docker_client)
    raw, records = traffic_of(settings, outcome)
    evidence = model_evidence(records)
    assert evidence.get("nonce") == nonce, "the model's evidence did not come back through the gateway"
    # The attacks ran inside the sandbox, once, while the evaluation carried on normally.
    assert report.status == "completed", report.error
    assert metric(report, "ops/error_rate") == 0.0
    assert metric(report, "perf/unscored_rate") == 0.0

    # (a) egress and DNS: the packets the sandbox sent towards the documentation addresses, the
    # stand-in, the other sandbox, and its DNS queries naming the nonce (also those Docker's
    # embedded resolver forwards) were seen on the sandbox's own bridge, where they were
    # refused, and on no other host interface; the stand-in saw nothing; no name resolved.
    own_bridge = bridge_name(outcome.trial_id)
    assert capture.dropped == 0, "the capture missed packets, so it cannot vouch for the trial"
    assert {s[3] for s in capture.seen if s[1] == own_bridge} >= {
        *(f"to {a}" for a in DOCUMENTATION_ADDRESSES),
        f"to {outside['address']}",
        f"to {bystander.address.split(':')[0]}",
    }, capture.seen  # the capture does see the attempts where they are made
    assert any("nonce" in s[3] for s in capture.seen if s[1] == own_bridge), capture.seen
    escaped = capture.escaped(own_bridge, watch.network, bystander.sandbox.details["bridge"])
    assert escaped == [], "packets of the sandbox got off its bridge"
    assert outside_saw(outside) == outside_before, "the stand-in for the internet was reached"
    assert len(evidence["egress"]) == 6 and not reached(evidence["egress"]), evidence["egress"]
    assert all(not v.startswith("resolved") for v in evidence["dns"].values()), evidence["dns"]

    # (b) the host, on every address including the sandbox's own gateway and docker0.
    assert listener.seen == [], f"the host listener was reached from the sandbox: {listener.seen}"
    tried = {k.split()[1].rsplit(":", 1)[0] for k in evidence["host"]}
    assert {*hosts, watch.gateway, interface_address("docker0")} <= tried, tried
    assert not reached(evidence["host"]), evidence["host"]

    # (c) the other trial: unreachable by address and by name, still healthy, answers unchanged
    # and it served no request but the test's (the witness counts them).
    assert len(evidence["other_trial"]) == 4 and not reached(evidence["other_trial"]), evidence["other_trial"]
    bystander.assert_unaffected()

    # (d) reads: nothing of the host or the other trial is visible; the secrets never appear in
    # the traffic, although the model's reads do reach the traffic (its own MLmodel did).
    reads = evidence["read"]
    assert (
        reads["/model/MLmodel"]["result"] == "read" and "python_function" in reads["/model/MLmodel"]["head"]
    )
    assert "python_function" in raw
    for path in read_paths[1:]:
        if path != "/etc/hostname":
            # ENOENT: not there at all; EACCES: the image's own /root and /etc/shadow.
            assert reads[path]["result"] in ("ENOENT", "EACCES"), (path, reads[path])
    assert all(
        reads[p]["result"] == "ENOENT" for p in read_paths if p.startswith((str(REPO), str(settings.home)))
    )
    own_name = reads["/etc/hostname"].get("head", "").strip()
    assert own_name and own_name != socket.gethostname()  # the container's own name, not the host's
    for secret in (bystander.secret, host_secret.read_text().strip(), private_key, readme_line):
        assert secret not in raw

    # (e) writes outside /tmp: refused everywhere, the root, system dirs, the model mount and the
    # engine-managed files bound from the host; from the host: nothing landed in the writable
    # layer, the model's mark never appeared in the engine's files, the model copy and the
    # protected host files are byte-for-byte unchanged.
    writes = evidence["write"]
    assert writes["/tmp"] == "written"  # the allowed area works, so the refusals are real
    refused = {k: v for k, v in writes.items() if k not in ("/tmp", "/dev/shm")}
    assert refused and all(v in ("EROFS", "EACCES") for v in refused.values()), refused
    assert all(writes[k] == "EROFS" for k in ("/", "/etc", "/usr", "/model")), writes
    assert not [f for f in watch.layer_files if nonce in f], watch.layer_files
    assert len(watch.engine_files) == 3 and not watch.marked_engine_files, watch.engine_files
    assert not watch.marker_pids  # and no process anywhere on the host carries the model's mark
    assert report.model is not None
    copy = settings.trials_dir / outcome.trial_id / "model" / model.name
    assert tree_digest(copy) == report.model.digest
    assert snapshot(protected) == before

    # (i) escalation: every attempt refused; from the host, every process in the sandbox ran
    # as the sandbox user with no capabilities, before and after the attempts.
    escalate = evidence["escalate"]
    assert escalate["setuid(0)"] == "EPERM" and escalate["setgid(0)"] == "EPERM"
    assert escalate["unshare(CLONE_NEWUSER)"] == "EPERM" and escalate["unshare(CLONE_NEWNS)"] == "EPERM"
    assert escalate["mount tmpfs on /tmp"] == "EPERM"
    assert escalate["add root user to /etc/passwd"] in ("EROFS", "EACCES")
    assert [v for k, v in escalate.items() if k.startswith("chmod u+s /")] in (["EROFS"], ["EPERM"])
    assert escalate["exec own set-uid copy"] == "EACCES"  # /tmp is noexec
    assert escalate["after"] == escalate["before"]
    assert escalate["after"]["CapEff"] == "0000000000000000" and escalate["after"]["NoNewPrivs"] == "1"
    assert watch.identities == {SANDBOX_IDENTITY}, watch.identities

    # What a regulator should see: the sandbox's attempts to get out, counted where they were
    # refused (the host firewall), not only the fact that they failed; and every place the
    # model could write. /dev/shm is a second writable tmpfs (64 MiB, noexec, private to the
    # sandbox, memory backed): harmless to the host, but the report lists only /tmp.
    refused_events = isolation_events(report, "connections_refused")
    controls = {c.control: c.detail for c in report.isolation.controls} if report.isolation else {}
    assert_recorded(
        (
            bool(refused_events) and refused_events[0].detail.get("to_host", 0) > 0,
            "the connection attempts the host firewall refused (isolation_event connections_refused)",
        ),
        (
            writes["/dev/shm"] != "written" or "/dev/shm" in controls.get("read-only root filesystem", ""),
            "every writable area of the sandbox (/dev/shm is writable, only /tmp is listed)",
        ),
    )


# -- (f) fork and thread bomb --------------------------------------------------------------
def test_fork_bomb_is_held_at_the_pid_limit(
    settings: Settings,
    prefect_harness: None,
    docker_client,  # type: ignore[no-untyped-def]
    bystander: Bystander,
    protected: list[Path],
    tmp_path: Path,
) -> None:
    marker = f"fb{uuid.uuid4().hex[:10]}"  # the bomb's process name: 15 characters at most
    model = save_hostile_model(tmp_path / "fork-bomb", "fork_bomb", nonce=marker, marker=marker)
    before = snapshot(protected)
    limit = settings.pids_limit

    # Two requests, one after the other: the first sets the bomb off, the second is served
    # (or not) while it rages.
    # The memory limit leaves room for 256 copies of the server's process: this trial is about
    # the PID limit (the memory bomb below is about memory).
    spec = hostile_spec("hostile-fork-bomb", model, batch_size=250, concurrency=1, memory_mb=1024)
    outcome, watch = run_watched(docker_client, spec, marker)

    report = check_reported(outcome, settings, docker_client)
    evidence = model_evidence(traffic_of(settings, outcome)[1])
    # The thread bomb was stopped by the same limit: fewer threads than the limit, then refusal.
    assert evidence["attack"] == "fork_bomb", evidence
    assert 0 < evidence["threads_started"] < limit and "can't start new thread" in evidence["thread_error"]
    assert evidence["pids_max"] == limit and evidence["pids_when_answering"] >= limit - 2
    # From the host: the bomb really ran, and the PID cgroup held the sandbox at its limit.
    assert watch.marker_pids, "no fork-bomb process was ever seen on the host"
    assert watch.pids_max == str(limit)
    assert 0.9 * limit <= watch.pids_peak <= limit, watch.pids_peak
    # Teardown killed every copy; the host, its files and the other trial are untouched.
    assert host_processes_with(marker) == []
    host_is_fine(docker_client)
    bystander.assert_unaffected()
    assert snapshot(protected) == before

    peak_pids = metric(report, "resources/peak_pids")
    assert_recorded(
        (
            peak_pids is not None and peak_pids >= 0.9 * limit,
            f"the process count pinned at the PID limit (metric resources/peak_pids, saw {peak_pids})",
        )
    )


# -- (g) memory bomb -----------------------------------------------------------------------
def test_memory_bomb_is_killed_inside_the_sandbox(
    settings: Settings,
    prefect_harness: None,
    docker_client,  # type: ignore[no-untyped-def]
    bystander: Bystander,
    protected: list[Path],
    tmp_path: Path,
) -> None:
    model = save_hostile_model(
        tmp_path / "memory-bomb", "memory_bomb", nonce=uuid.uuid4().hex[:12], memory_limit_mb=MEMORY_MB
    )
    before = snapshot(protected)
    since = time.time()

    outcome, watch = run_watched(docker_client, hostile_spec("hostile-memory-bomb", model, batch_size=100))

    report = check_reported(outcome, settings, docker_client)
    # From the engine: the kernel's OOM killer ended the model server inside its cgroup, which
    # never held more than its limit.
    events = engine_events(docker_client, watch.container_id, since)
    assert "oom" in events and "die 137" in events, events
    assert watch.memory_limit == MEMORY_MB << 20
    assert 0 < watch.memory_peak <= watch.memory_limit
    # The model's first request killed it: no answer came back, and the report's operational
    # and performance evidence shows it.
    _, records = traffic_of(settings, outcome)
    assert records and all(r["status"] >= 500 for r in records), {r["status"] for r in records}
    assert metric(report, "ops/error_rate") == 1.0
    assert metric(report, "perf/unscored_rate") == 1.0
    host_is_fine(docker_client)
    bystander.assert_unaffected()
    assert snapshot(protected) == before

    oom_events = metric(report, "resources/oom_events")
    assert_recorded(
        (
            bool(isolation_events(report, "oom_killed")) and oom_events is not None and oom_events >= 1,
            "that the model server was OOM-killed (isolation_event oom_killed, metric resources/oom_events)",
        ),
        (
            bool(isolation_events(report, "server_exited")),
            "that the model server exited during the trial (isolation_event server_exited)",
        ),
    )


# -- (h) filling the disk ------------------------------------------------------------------
def test_disk_fill_stops_at_the_sandbox_tmpfs(
    settings: Settings,
    prefect_harness: None,
    docker_client,  # type: ignore[no-untyped-def]
    bystander: Bystander,
    protected: list[Path],
    tmp_path: Path,
) -> None:
    nonce = uuid.uuid4().hex[:12]
    model = save_hostile_model(tmp_path / "disk-fill", "disk_fill", nonce=nonce)
    before = snapshot(protected)
    tmpfs = settings.tmpfs_size_mb << 20

    outcome, watch = run_watched(docker_client, hostile_spec("hostile-disk-fill", model))

    report = check_reported(outcome, settings, docker_client)
    assert report.status == "completed", report.error
    assert metric(report, "ops/error_rate") == 0.0  # a full /tmp did not stop the evaluation
    evidence = model_evidence(traffic_of(settings, outcome)[1])
    # The model's account: /tmp filled up to its size and no further; nowhere else took a byte
    # (/dev/shm is the engine's own small tmpfs, bounded the same way).
    assert evidence["/tmp"]["error"] == "ENOSPC" and evidence["/tmp"]["bytes"] <= tmpfs, evidence["/tmp"]
    assert evidence["/dev/shm"]["error"] == "ENOSPC" and evidence["/dev/shm"]["bytes"] <= 64 << 20
    elsewhere = {k: v for k, v in evidence.items() if k not in ("attack", "/tmp", "/dev/shm")}
    assert elsewhere and all(
        v["bytes"] == 0 and v["error"] in ("EROFS", "EACCES") for v in elsewhere.values()
    )
    # From the host: the tmpfs is the configured size and was filled to it, the writable layer
    # got nothing, the host's files and the model copy are unchanged.
    assert watch.mounts["/tmp"]["size"] == tmpfs
    assert watch.mounts["/tmp"]["used_peak"] >= tmpfs - (1 << 20), watch.mounts
    assert watch.mounts["/dev/shm"]["size"] <= 64 << 20, watch.mounts
    assert not [f for f in watch.layer_files if nonce in f], watch.layer_files
    assert report.model is not None
    copy = settings.trials_dir / outcome.trial_id / "model" / model.name
    assert tree_digest(copy) == report.model.digest
    host_is_fine(docker_client)
    bystander.assert_unaffected()
    assert snapshot(protected) == before


# -- (j) a daemon meant to outlive the trial -----------------------------------------------
def test_daemon_does_not_outlive_its_trial(
    settings: Settings,
    prefect_harness: None,
    docker_client,  # type: ignore[no-untyped-def]
    bystander: Bystander,
    protected: list[Path],
    tmp_path: Path,
) -> None:
    marker = f"hostile-daemon-{uuid.uuid4().hex}"
    model = save_hostile_model(tmp_path / "daemon", "daemon", nonce=marker[-12:], marker=marker)
    before = snapshot(protected)

    outcome, watch = run_watched(docker_client, hostile_spec("hostile-daemon", model), marker)

    report = check_reported(outcome, settings, docker_client)
    assert report.status == "completed", report.error
    assert model_evidence(traffic_of(settings, outcome)[1]) == {"attack": "daemon", "marker": marker}
    # From the host: the detached daemon really ran during the trial (so the check below can
    # see such a process), and none is left once the trial is over.
    assert watch.marker_pids, "the daemon was never seen in the host's process table"
    assert host_processes_with(marker) == []
    if shutil.which("ps"):
        ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True)
        assert marker not in ps.stdout
    host_is_fine(docker_client)
    bystander.assert_unaffected()
    assert snapshot(protected) == before

    # What a regulator should see: that the model left a detached process running, which
    # teardown then ended (the processes found in the sandbox when it was torn down).
    at_teardown = isolation_events(report, "processes_at_teardown")
    assert_recorded(
        (
            any(marker in str(e.detail.get("processes")) for e in at_teardown),
            "the processes still running in the sandbox at teardown (isolation_event processes_at_teardown)",
        )
    )
