"""Process backend: the model server as a local subprocess, for machines with no container engine.

Much weaker than a container, and every report says so: the server listens on loopback only,
runs under resource limits (rlimits) in its own session, so teardown finds every process it
started, and as uid 65534 when the platform runs as root and that user can reach the
interpreter. It shares the host's network and filesystem, and rlimits are per process: they stop
a leaking or runaway model, not a hostile one that forks or uses shared memory.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import math
import os
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, ClassVar

import httpx

from orchestrator.backends import procfs
from orchestrator.backends.attestation import PROBE_SCRIPT
from orchestrator.backends.base import (
    LABEL_TRIAL,
    Endpoint,
    IsolationControl,
    ResourceStats,
    Sandbox,
    SandboxBackend,
)
from orchestrator.errors import BackendError, SandboxTimeoutError
from orchestrator.settings import Settings, get_settings
from orchestrator.spec import Resources
from orchestrator.templates import Template

logger = logging.getLogger(__name__)

SANDBOX_UID = 65534  # nobody / nogroup
OPEN_FILES = 1024  # a model server behind a gateway of at most 64 concurrent requests
_PR_SET_NO_NEW_PRIVS = 38
# rlimit -> (control as the report names it, with what it does not cover; its line in /proc/PID/limits)
_RLIMIT_CONTROLS = {
    resource.RLIMIT_DATA: ("memory limit, per process (RLIMIT_DATA; not shared memory)", "Max data size"),
    resource.RLIMIT_NPROC: ("process limit (RLIMIT_NPROC; every process of the uid)", "Max processes"),
    resource.RLIMIT_FSIZE: ("file size limit, per file (RLIMIT_FSIZE; not a disk quota)", "Max file size"),
    resource.RLIMIT_NOFILE: ("open files limit (RLIMIT_NOFILE)", "Max open files"),
    resource.RLIMIT_CPU: ("CPU time bound (RLIMIT_CPU; a total, not a rate)", "Max cpu time"),
    resource.RLIMIT_CORE: ("no core dumps (RLIMIT_CORE)", "Max core file size"),
}
_libc = ctypes.CDLL(None, use_errno=True)  # resolved here: the preexec hook must not load libraries


@dataclass(frozen=True)
class Launch:
    """Which interpreter runs the sandbox's processes, and as whom (None: the platform's user)."""

    python: str
    uid: int | None
    reason: str

    @property
    def runs_as(self) -> int:
        return os.geteuid() if self.uid is None else self.uid


def _reachable_by_others(path: Path) -> bool:
    try:
        for part in (*reversed(path.parents), path):
            mode = part.stat().st_mode
            if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
                return False
        return bool(path.stat().st_mode & stat.S_IROTH)
    except OSError:
        return False


def plan_launch(python: str = sys.executable) -> Launch:
    if os.geteuid() != 0:
        return Launch(python, None, f"the platform runs as uid {os.geteuid()} and so does the server")
    needed = [Path(python), Path(python).resolve()]
    if python == sys.executable:  # its stdlib, site-packages and libpython must be readable too
        paths = sysconfig.get_paths()
        needed += [Path(paths[key]) for key in ("stdlib", "purelib", "platlib")]
        if sysconfig.get_config_var("Py_ENABLE_SHARED"):
            needed.append(Path(str(sysconfig.get_config_var("LIBDIR"))))
    blocked = [str(p) for p in needed if not _reachable_by_others(p)]
    if blocked:
        return Launch(
            python,
            None,
            f"the platform runs as root but uid {SANDBOX_UID} cannot read {blocked[0]}, so the server "
            "runs as ROOT; install Python where other users can read it, or run the platform unprivileged",
        )
    return Launch(python, SANDBOX_UID, f"privileges dropped from root to uid {SANDBOX_UID}")


def provided_probes(launch: Launch) -> frozenset[str]:
    """The probes a launch passes honestly. A root server could lift every limit itself."""
    if launch.runs_as == 0:
        return frozenset()
    probes = {"non-root", "no-capabilities", "no-new-privileges", "memory-limit"}
    if launch.uid is not None:  # RLIMIT_NPROC counts every process of the uid: only with its own
        probes.add("pids-limit")
    return frozenset(probes)


class ProcessBackend(SandboxBackend):
    name = "process"
    isolation_level = "process"
    # Decided once per interpreter: whether uid 65534 can run it does not change per trial.
    launch: ClassVar[Launch] = plan_launch()
    required_probes = provided_probes(launch)

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self._servers: dict[str, subprocess.Popen[bytes]] = {}
        self._last: dict[str, dict[str, Any]] = {}  # state of sandboxes being torn down

    @property
    def pids_limit(self) -> int:
        return self.settings.pids_limit

    def _dir(self, trial_id: str) -> Path:
        return self.settings.home / "sandboxes" / trial_id

    def _state(self, trial_id: str) -> dict[str, Any] | None:
        try:
            state = json.loads((self._dir(trial_id) / "state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return state if isinstance(state, dict) else None

    def _save(self, trial_id: str, state: dict[str, Any]) -> None:
        tmp = self._dir(trial_id) / "state.json.tmp"
        tmp.write_text(json.dumps(state, indent=1), encoding="utf-8")
        os.replace(tmp, tmp.with_name("state.json"))  # a sweep never reads half a file

    # -- lifecycle -------------------------------------------------------------------
    def _provision(self, trial_id: str, resources: Resources, labels: dict[str, str]) -> Sandbox:
        path = self._dir(trial_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir()
        except FileExistsError as exc:
            raise BackendError(f"[process] trial {trial_id}: a sandbox already exists at {path}") from exc
        # The sandbox dir (state, log, model copy) stays the platform's; only home/ is the server's.
        path.chmod(0o755)
        if self.launch.uid is not None and not _reachable_by_others(path):
            path.rmdir()  # libraries resolve paths to absolute ones: the server must reach its dir
            raise BackendError(
                f"[process] trial {trial_id}: uid {SANDBOX_UID} cannot reach {path}; give its parent "
                "directories o+x, or set REGSANDBOX_HOME to a place it can reach"
            )
        (path / "home").mkdir(mode=0o700)
        if self.launch.uid is not None:
            os.chown(path / "home", self.launch.uid, self.launch.uid)
        self._save(trial_id, {"labels": labels, "uid": self.launch.runs_as})
        if self.launch.runs_as == 0:
            logger.warning("[process] trial %s: %s", trial_id, self.launch.reason)
        details = {"dir": str(path), "uid": self.launch.runs_as, "launch": self.launch.reason}
        return Sandbox(
            trial_id=trial_id, backend=self.name, resources=resources, labels=labels, details=details
        )

    def _deploy(self, sandbox: Sandbox, template: Template, model_dir: Path) -> Endpoint:
        trial_id, path = sandbox.trial_id, self._dir(sandbox.trial_id)
        server = template.folder / "server.py"
        if not server.is_file():
            raise BackendError(f"[process] trial {trial_id}: template {template.name} needs a container")
        state = self._state(trial_id)
        if state is None:
            raise BackendError(f"[process] trial {trial_id}: not provisioned (no {path / 'state.json'})")
        if procfs.members(state):
            raise BackendError(f"[process] trial {trial_id}: a model server is already running")
        started = time.monotonic()
        shutil.copyfile(server, path / "server.py")
        model = str(model_dir)
        if self.launch.uid is not None:
            # A copy owned by the platform: readable, never writable, by the sandbox's user,
            # wherever the original lives (often a directory that user cannot enter).
            shutil.rmtree(path / "model", ignore_errors=True)  # a server that died before may redeploy
            shutil.copytree(model_dir, path / "model", copy_function=shutil.copyfile)
            for item in (path / "model", *(path / "model").rglob("*")):
                item.chmod(0o755 if item.is_dir() else 0o644)
            model = "model"
        with socket.socket() as free:  # a free loopback port for the server to bind right after
            free.bind(("127.0.0.1", 0))
            port = int(free.getsockname()[1])
        env = {"MODEL_DIR": model, "PORT": str(port), "HOST": "127.0.0.1"}
        with open(path / "server.log", "ab") as log:
            proc = self._spawn([self.launch.python, "-I", "-B", "-u", "server.py"], sandbox, log, env)
        self._servers[trial_id] = proc
        started_at = procfs.proc_stat(proc.pid)
        state.update(pid=proc.pid, pgid=proc.pid, start=started_at.start if started_at else 0, port=port)
        self._save(trial_id, state)
        url = f"http://127.0.0.1:{port}"
        self._wait_healthy(proc, url + template.health_path, trial_id, started)
        return Endpoint(url=url, health_path=template.health_path, ready_s=time.monotonic() - started)

    def _spawn(
        self, argv: list[str], sandbox: Sandbox, out: IO[bytes] | int, extra_env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` in the sandbox: own session, minimal environment, limits, dropped user."""
        path = self._dir(sandbox.trial_id)
        # BLAS/OpenMP and malloc otherwise size threads and arenas to the host's cores, and each
        # reservation counts against RLIMIT_DATA: with these the test model's server runs in
        # 320 MiB; without them it sometimes died at its first prediction even with 512 MiB.
        threads = str(max(1, math.ceil(sandbox.resources.cpus)))
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(path / "home"),
            "TMPDIR": str(path / "home"),
            "LANG": "C.UTF-8",
            "MALLOC_ARENA_MAX": "2",
            **dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"), threads),
            **extra_env,
        }
        user: dict[str, Any] = {}
        if self.launch.uid is not None:  # setgroups([]), setgid, setuid: in that order, before exec
            user = {"user": self.launch.uid, "group": self.launch.uid, "extra_groups": []}
        try:
            return subprocess.Popen(
                argv,
                cwd=path,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.PIPE if out == subprocess.PIPE else subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                preexec_fn=self._preexec(sandbox.resources),
                **user,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise BackendError(f"[process] trial {sandbox.trial_id}: cannot start {argv[:4]}: {exc}") from exc

    def limits(self, resources: Resources) -> list[tuple[int, int]]:
        """(rlimit, value) pairs every sandbox process runs under, as soft and hard limit."""
        # RLIMIT_DATA, not RLIMIT_AS: the server maps ~300 MiB of shared libraries and untouched
        # reservations that RLIMIT_AS would count (tiny sklearn model: AS needs 640 MiB, DATA
        # 320 MiB, for 270 MiB resident).
        found = [
            (resource.RLIMIT_DATA, resources.memory_mb * 2**20),
            (resource.RLIMIT_NOFILE, OPEN_FILES),
            (resource.RLIMIT_CORE, 0),
            (resource.RLIMIT_FSIZE, self.settings.tmpfs_size_mb * 2**20),
            # A bound on runaway computation, not a rate: the whole trial at its CPU share.
            (resource.RLIMIT_CPU, math.ceil(resources.timeout_s * max(resources.cpus, 1.0))),
        ]
        if self.launch.uid is not None:
            found.append((resource.RLIMIT_NPROC, self.settings.pids_limit))
        return found

    def _preexec(self, resources: Resources) -> Callable[[], None]:
        limits = self.limits(resources)

        def apply() -> None:  # between fork and exec, after the uid change: system calls only
            for which, value in limits:
                resource.setrlimit(which, (value, value))
            if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")

        return apply

    def _run_probes(self, sandbox: Sandbox, args_json: str) -> str:
        script = PROBE_SCRIPT.read_text(encoding="utf-8")
        argv = [self.launch.python, "-I", "-B", "-c", script, args_json]
        proc = self._spawn(argv, sandbox, subprocess.PIPE, {})
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired as exc:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise SandboxTimeoutError(f"[process] trial {sandbox.trial_id}: isolation probes hung") from exc
        return (out if proc.returncode == 0 else out + err).decode(errors="replace")

    def _wait_healthy(self, proc: subprocess.Popen[bytes], url: str, trial_id: str, started: float) -> None:
        deadline = started + self.settings.health_timeout_s
        delay = 0.02
        with httpx.Client(timeout=1.0, trust_env=False) as http:  # loopback: never through a proxy
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if http.get(url).status_code == 200:
                        return
                if proc.poll() is not None:
                    tail = self._tail(trial_id, 40)
                    hint = " (is memory_mb below what the server needs?)" if "MemoryError" in tail else ""
                    raise BackendError(
                        f"[process] trial {trial_id}: model server exited "
                        f"with {proc.returncode}{hint}:\n{tail}"
                    )
                time.sleep(delay)
                delay = min(delay * 1.5, 0.25)
        raise SandboxTimeoutError(
            f"[process] trial {trial_id}: model server not healthy after "
            f"{self.settings.health_timeout_s:.0f}s:\n{self._tail(trial_id, 40)}"
        )

    def _teardown(self, trial_id: str) -> list[str]:
        removed = []
        state = self._state(trial_id) or self._last.get(trial_id)
        if state is not None:
            self._last[trial_id] = state
            killed = procfs.kill_all(state)
            if killed:
                removed.append(f"process group {state['pgid']} ({killed} processes)")
        proc = self._servers.pop(trial_id, None)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1)  # collect our own child, or it lingers as a zombie
        path = self._dir(trial_id)
        if path.exists() and not (state and procfs.members(state)):  # keep the state while any process lives
            shutil.rmtree(path, ignore_errors=True)  # what could not go is reported as remaining
            if not path.exists():
                removed.append(f"directory {path}")
        return removed

    def _remaining(self, trial_id: str) -> list[str]:
        state = self._state(trial_id) or self._last.get(trial_id)
        left = [f"process {pid} ({p.comm})" for pid, p in procfs.members(state).items()] if state else []
        if self._dir(trial_id).exists():
            left.append(f"directory {self._dir(trial_id)}")
        if not left:
            self._last.pop(trial_id, None)
        return left

    def _owned(self) -> dict[str, dict[str, str]]:
        root = self.settings.home / "sandboxes"
        owned: dict[str, dict[str, str]] = {}
        for path in sorted(root.iterdir()) if root.is_dir() else []:
            if path.is_dir() and not path.name.startswith("."):
                # Without a state file (a provision cut short) no owner is known: only
                # ``reap --all`` removes it.
                labels = (self._state(path.name) or {}).get("labels") or {LABEL_TRIAL: path.name}
                owned[path.name] = {str(k): str(v) for k, v in labels.items()}
        return owned

    # -- observation -----------------------------------------------------------------
    def _tail(self, trial_id: str, lines: int) -> str:
        try:
            with open(self._dir(trial_id) / "server.log", "rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - 256 * 1024))
                data = log.read()
        except OSError:
            return ""
        return "\n".join(data.decode(errors="replace").splitlines()[-lines:])

    def processes(self, sandbox: Sandbox) -> list[str]:
        state = self._state(sandbox.trial_id)
        return [procfs.describe(p) for _, p in sorted(procfs.members(state).items())] if state else []

    def logs(self, sandbox: Sandbox, tail: int = 200) -> str:
        return self._tail(sandbox.trial_id, tail)

    def stats(self, sandbox: Sandbox) -> ResourceStats:
        state = self._state(sandbox.trial_id) or {}
        found = procfs.members(state)
        if not found:
            return ResourceStats(running=False)
        # RSS summed over processes counts pages they share (a forked child's) more than once.
        return ResourceStats(
            cpu_seconds=sum(p.cpu_ticks for p in found.values()) / os.sysconf("SC_CLK_TCK"),
            memory_bytes=sum(p.rss_pages for p in found.values()) * os.sysconf("SC_PAGE_SIZE"),
            memory_limit_bytes=procfs.rlimits(state["pgid"]).get("Max data size"),
            pids=len(found),
            running=state["pgid"] in found,
        )

    def isolation_controls(self, sandbox: Sandbox) -> list[IsolationControl]:
        """What holds for the running server, read back from /proc; what cannot hold, said plainly."""
        state = self._state(sandbox.trial_id) or {}
        threads = max(1, math.ceil(sandbox.resources.cpus))
        found: list[tuple[str, bool, str]] = [
            ("network isolation", False, "none: it reaches the internet, host services, other sandboxes"),
            ("filesystem isolation", False, f"none: it sees the host's files as uid {self.launch.runs_as}"),
            ("CPU rate limit", False, f"none: {threads} BLAS/OpenMP thread(s) asked for, not enforced"),
        ]
        live, pid = procfs.members(state), int(state.get("pgid") or 0)
        if pid not in live:
            found.append(("model server running", False, "no live server to read the other controls from"))
            return [IsolationControl(control=c, applied=a, detail=d) for c, a, d in found]
        status = dict(
            line.split(":", 1) for line in procfs.read_text(f"/proc/{pid}/status").splitlines() if ":" in line
        )
        uid, cap_eff, nnp = (
            int(status["Uid"].split()[0]),
            int(status["CapEff"], 16),
            status["NoNewPrivs"].strip(),
        )
        listening = procfs.listening(list(live))
        model = Path(sandbox.details["dir"]) / "model"
        model_owner = model.stat().st_uid if model.is_dir() else uid
        shared = "" if uid != os.getuid() else ": it can read and signal all that the platform can"
        found += [
            ("listens on loopback only", bool(listening) and all(lo for _, lo in listening),
             ", ".join(a for a, _ in listening) or "no listening socket"),
            ("non-root user", uid != 0, f"uid={uid}: {self.launch.reason}"),
            ("separate user from the platform", uid != os.getuid(), f"uid {uid}{shared}"),
            ("all capabilities dropped", cap_eff == 0, f"CapEff={cap_eff:#x}"),
            ("no-new-privileges", nnp == "1", f"NoNewPrivs={nnp}"),
            ("model read-only to the server", model_owner != uid, f"model files owned by uid {model_owner}"),
        ]  # fmt: skip
        wanted, limits = dict(self.limits(sandbox.resources)), procfs.rlimits(pid)
        for which, (control, key) in _RLIMIT_CONTROLS.items():
            value = limits.get(key)
            holds = uid != 0 and which in wanted and value is not None and value <= wanted[which]
            caveat = "" if uid else " (a root server can lift it)"
            found.append((control, holds, f"hard limit {'unlimited' if value is None else value}{caveat}"))
        return [IsolationControl(control=c, applied=a, detail=d) for c, a, d in found]
