"""The isolation backend interface every sandbox provider implements.

The public methods here own the invariants (labels on every object, idempotent and
verified teardown, refusing to touch what the platform did not create); backends fill in
the underscored hooks. Teardown and the orphan sweep take a trial id rather than a live
object because the hooks that run after a crash or a cancel have no access to the memory
of the flow that provisioned the sandbox.
"""

from __future__ import annotations

import abc
import json
import logging
import os
import re
import socket
import time
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.backends.attestation import (
    ALL_PROBES,
    OUTSIDE_STAND_IN,
    Attestation,
    Canary,
    ProbeResult,
    host_addresses,
)
from orchestrator.errors import BackendError
from orchestrator.spec import Resources
from orchestrator.templates import Template

LABEL_PREFIX = "regsandbox"
LABEL_MANAGED = f"{LABEL_PREFIX}.managed"
LABEL_TRIAL = f"{LABEL_PREFIX}.trial_id"
LABEL_PID = f"{LABEL_PREFIX}.owner_pid"
LABEL_HOST = f"{LABEL_PREFIX}.owner_host"
LABEL_CREATED = f"{LABEL_PREFIX}.created"
# How long teardown waits for an engine that does not answer (a restart takes seconds).
ENGINE_PATIENCE_S = 60.0
logger = logging.getLogger("regsandbox.backends")

_TRIAL_ID = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Sandbox(_Frozen):
    """A provisioned, still empty, isolated environment for one trial."""

    trial_id: str
    backend: str
    resources: Resources
    labels: dict[str, str]
    details: dict[str, Any] = Field(default_factory=dict, description="Backend-specific ids and addresses.")


class Endpoint(_Frozen):
    """Where the deployed model answers, as seen from the host (the gateway's upstream)."""

    url: str
    health_path: str
    container: str | None = None
    image: str | None = None
    image_digest: str | None = None
    ready_s: float = Field(description="Seconds from deploy start until the health check answered.")


class ResourceStats(_Frozen):
    cpu_percent: float | None = None
    cpu_seconds: float | None = Field(default=None, description="Cumulative CPU time of the sandbox.")
    memory_bytes: int | None = None
    memory_limit_bytes: int | None = None
    pids: int | None = None
    oom_killed: bool = False
    running: bool = True


class IsolationControl(_Frozen):
    """One protection and whether the backend actually applied it."""

    control: str
    applied: bool
    detail: str


class TeardownResult(_Frozen):
    trial_id: str
    removed: list[str]
    remaining: list[str]

    @property
    def verified(self) -> bool:
        return not self.remaining


def owner_labels(trial_id: str) -> dict[str, str]:
    """Labels put on every object, so teardown and the sweep can find it without memory."""
    return {
        LABEL_MANAGED: "true",
        LABEL_TRIAL: trial_id,
        LABEL_PID: str(os.getpid()),
        LABEL_HOST: socket.gethostname(),
        LABEL_CREATED: f"{time.time():.0f}",
    }


def owner_alive(labels: dict[str, str]) -> bool:
    """True when the process that created an object is still running on this host."""
    if labels.get(LABEL_HOST) != socket.gethostname():
        return True  # another host's trial: never ours to judge
    try:
        os.kill(int(labels.get(LABEL_PID, "0")), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return int(labels.get(LABEL_PID, "0")) > 0


class SandboxBackend(abc.ABC):
    """Provision, deploy into, observe and tear down isolated sandboxes."""

    name: ClassVar[str]
    isolation_level: ClassVar[str]
    # Probes (see attestation.ALL_PROBES) this backend claims to pass; the others are skipped
    # and reported as not provided.
    required_probes: ClassVar[frozenset[str]]
    # Whether a spec asking for GPUs can be honoured; the others refuse it rather than run without.
    schedules_gpus: ClassVar[bool] = False

    def provision(self, trial_id: str, resources: Resources) -> Sandbox:
        """Create the trial's empty isolated environment; raise BackendError on failure."""
        if not _TRIAL_ID.match(trial_id):
            raise BackendError(f"[{self.name}] invalid trial id {trial_id!r}")
        if resources.gpus and not self.schedules_gpus:
            raise BackendError(
                f"[{self.name}] trial {trial_id}: resources.gpus={resources.gpus} but this backend "
                "cannot schedule GPUs (the kubernetes backend can)"
            )
        return self._provision(trial_id, resources, owner_labels(trial_id))

    def deploy(self, sandbox: Sandbox, template: Template, model_dir: Path) -> Endpoint:
        """Start the template's server with the model mounted read-only; return once healthy.

        Raises SandboxTimeoutError when the server does not become healthy in time (the
        message carries the tail of its logs) and BackendError for other failures.
        """
        return self._deploy(sandbox, template, model_dir.resolve())

    def attest(self, sandbox: Sandbox) -> Attestation:
        """Run the isolation probes inside ``sandbox`` and return what they showed.

        A canary listens on every host address meanwhile; a connection to it fails the
        attestation whatever the probes themselves reported.
        """
        with Canary() as canary:
            canary_ok = canary.self_test()
            skip = [p for p in ALL_PROBES if p not in self.required_probes]
            args = {
                "hosts": host_addresses(),
                "canary_port": canary.port,
                "outside": [list(OUTSIDE_STAND_IN)],
                "skip": skip,
                "limits": {
                    "memory_bytes": sandbox.resources.memory_mb * 2**20,
                    "pids": self.pids_limit,
                    "cpus": sandbox.resources.cpus,
                },
            }
            raw = self._run_probes(sandbox, json.dumps(args))
            touched = list(canary.connections)
        try:
            found = {r["probe"]: r for r in json.loads(raw.strip().splitlines()[-1])}
        except (ValueError, IndexError, KeyError, TypeError):
            found = {}
            raw_detail = raw[-300:]
        else:
            raw_detail = ""
        probes = []
        for probe in ALL_PROBES:
            required = probe in self.required_probes
            if probe == "canary-untouched" and required:
                passed = canary_ok and not touched
                detail = (
                    f"connections: {touched}" if canary_ok else "canary listener did not answer on the host"
                )
                probes.append(ProbeResult(probe=probe, passed=passed, required=required, detail=detail))
            elif probe in found:
                item = found[probe]
                probes.append(
                    ProbeResult(
                        probe=probe,
                        passed=bool(item["passed"]),
                        required=required,
                        detail=str(item.get("detail", "")),
                    )
                )
            elif required:
                probes.append(
                    ProbeResult(
                        probe=probe,
                        passed=False,
                        required=True,
                        detail=f"probe did not report: {raw_detail or 'no output'}",
                    )
                )
            else:
                probes.append(
                    ProbeResult(
                        probe=probe,
                        passed=False,
                        required=False,
                        detail=f"not provided by the {self.name} backend",
                    )
                )
        return Attestation(backend=self.name, level=self.isolation_level, probes=probes)

    @property
    def pids_limit(self) -> int:
        return 256

    def refused_connections(self, sandbox: Sandbox) -> dict[str, int] | None:
        """Connection attempts out of the sandbox refused so far, by kind; None if not observable."""
        return None

    def processes(self, sandbox: Sandbox) -> list[str]:
        """The processes running in the sandbox right now, one "pid ppid sid user args" line each.

        Empty when the backend cannot observe them.
        """
        return []

    def ping(self) -> None:  # noqa: B027 - most backends have no engine to ask
        """Raise BackendUnavailableError when the backend's engine does not answer."""
        return None

    def teardown(self, trial_id: str) -> TeardownResult:
        """Remove every object of the trial; safe to call any number of times.

        An engine that stops answering (a restart) is waited for, up to ``ENGINE_PATIENCE_S``,
        and the teardown done again once it is back; any other error is raised at once.
        """
        deadline = time.monotonic() + ENGINE_PATIENCE_S
        while True:
            self._await_engine(deadline)
            try:
                removed = self._teardown(trial_id)
                return TeardownResult(trial_id=trial_id, removed=removed, remaining=self._remaining(trial_id))
            except Exception as exc:
                # A restart shows as a lost connection, even when the engine answers again a moment
                # later (it came back between the failed call and this check): do it again.
                if time.monotonic() > deadline or not (self._lost_engine(exc) or not self._answers()):
                    raise
                logger.warning("[%s] engine went away during teardown of %s: %s", self.name, trial_id, exc)
                time.sleep(1.0)

    def _lost_engine(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the engine's connection being lost (a backend with an engine says)."""
        return False

    def _answers(self) -> bool:
        try:
            self.ping()
            return True
        except Exception:
            return False

    def _await_engine(self, deadline: float) -> None:
        """Wait (until ``deadline``) for an engine that does not answer: tearing down right then
        would leave the sandbox behind until the next sweep. After that, teardown goes ahead."""
        while not self._answers() and time.monotonic() < deadline:
            logger.warning("[%s] engine not answering before teardown; waiting", self.name)
            time.sleep(1.0)

    def reap(
        self, older_than_s: float = 0.0, everything: bool = False, prefix: str = ""
    ) -> list[TeardownResult]:
        """Tear down sandboxes whose creating process is gone (or all of them with ``everything``).

        Only objects carrying the platform's labels are considered, and of those only trials whose
        id starts with ``prefix``; nothing else is touched.
        """
        results = []
        now = time.time()
        for trial_id, labels in self._owned().items():
            if not trial_id.startswith(prefix):
                continue
            age = now - float(labels.get(LABEL_CREATED, now))
            if age < older_than_s:
                continue
            if everything or not owner_alive(labels):
                results.append(self.teardown(trial_id))
        return results

    @abc.abstractmethod
    def stats(self, sandbox: Sandbox) -> ResourceStats:
        """Current resource use of the sandbox's model server."""

    @abc.abstractmethod
    def logs(self, sandbox: Sandbox, tail: int = 200) -> str:
        """Last lines of the model server's output."""

    @abc.abstractmethod
    def isolation_controls(self, sandbox: Sandbox) -> list[IsolationControl]:
        """The protections in force for this sandbox, read back from the engine."""

    @abc.abstractmethod
    def _run_probes(self, sandbox: Sandbox, args_json: str) -> str:
        """Run ``probe_script.py`` inside the sandbox with ``args_json``; return its stdout."""

    @abc.abstractmethod
    def _provision(self, trial_id: str, resources: Resources, labels: dict[str, str]) -> Sandbox: ...

    @abc.abstractmethod
    def _deploy(self, sandbox: Sandbox, template: Template, model_dir: Path) -> Endpoint: ...

    @abc.abstractmethod
    def _teardown(self, trial_id: str) -> list[str]:
        """Remove the trial's objects; return descriptions of what was removed."""

    @abc.abstractmethod
    def _remaining(self, trial_id: str) -> list[str]:
        """Descriptions of the trial's objects that still exist."""

    @abc.abstractmethod
    def _owned(self) -> dict[str, dict[str, str]]:
        """trial id -> labels, for every trial that has objects of this backend."""
