"""Isolation backends behind one interface.

Backends register by name; their modules (and heavy clients such as docker or kubernetes)
are imported only when that backend is asked for, so listing backends needs neither.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterator

from orchestrator.backends.attestation import Attestation, ProbeResult
from orchestrator.backends.base import (
    Endpoint,
    IsolationControl,
    ResourceStats,
    Sandbox,
    SandboxBackend,
    TeardownResult,
)
from orchestrator.errors import BackendError, BackendUnavailableError
from orchestrator.settings import Settings, get_settings

__all__ = [
    "Attestation",
    "Endpoint",
    "IsolationControl",
    "ProbeResult",
    "ResourceStats",
    "Sandbox",
    "SandboxBackend",
    "TeardownResult",
    "answering",
    "available_backends",
    "SWEPT_BACKENDS",
    "reap_all",
    "teardown_everywhere",
    "get_backend",
    "register_backend",
]

logger = logging.getLogger(__name__)

BackendFactory = Callable[[Settings], SandboxBackend]
_REGISTRY: dict[str, str | BackendFactory] = {
    "docker": "orchestrator.backends.docker:DockerBackend",
    "process": "orchestrator.backends.process:ProcessBackend",
    "kubernetes": "orchestrator.backends.kubernetes:KubernetesBackend",
}


def register_backend(name: str, factory: str | BackendFactory) -> None:
    """Make a backend available by name ("module:Class" or a callable taking Settings)."""
    _REGISTRY[name] = factory


def available_backends() -> list[str]:
    return sorted(_REGISTRY)


def _load(name: str, settings: Settings) -> SandboxBackend:
    factory = _REGISTRY.get(name)
    if factory is None:
        raise BackendError(f"unknown backend {name!r} (known: {', '.join(available_backends())})")
    if isinstance(factory, str):
        module_name, _, attr = factory.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise BackendError(f"backend {name!r} is not available in this installation: {exc}") from exc
        backend: SandboxBackend = getattr(module, attr)(settings)
        return backend
    return factory(settings)


def get_backend(name: str | None = None, settings: Settings | None = None) -> SandboxBackend:
    """The backend called ``name`` (default: the setting). ``auto`` prefers Docker.

    With ``auto``, a machine where no Docker engine answers falls back to the process
    backend, loudly: its isolation is much weaker and every report says so.
    """
    settings = settings or get_settings()
    name = name or settings.backend
    if name != "auto":
        return _load(name, settings)
    docker = _load("docker", settings)
    try:
        docker.ping()
        return docker
    except BackendUnavailableError as exc:
        logger.warning(
            "no container engine answers (%s); falling back to the PROCESS backend: the model runs as a "
            "local process with resource limits only, without network or filesystem isolation",
            exc,
        )
        return _load("process", settings)


# Swept after a crash and by `regsandbox reap`; one without an engine or a configured cluster is
# skipped in milliseconds (no kubeconfig means no attempt to connect).
SWEPT_BACKENDS = ("docker", "process", "kubernetes")


def answering(
    names: tuple[str, ...] = SWEPT_BACKENDS, settings: Settings | None = None
) -> Iterator[SandboxBackend]:
    """Each named backend whose engine answers; one without an engine is skipped (and logged)."""
    for name in names:
        try:
            backend = _load(name, settings or get_settings())
            backend.ping()
        except BackendError as exc:
            logger.info("backend %s skipped: %s", name, exc)
            continue
        yield backend


def reap_all(
    names: tuple[str, ...] = SWEPT_BACKENDS,
    older_than_s: float = 0.0,
    everything: bool = False,
    settings: Settings | None = None,
) -> list[TeardownResult]:
    """Sweep every named backend that answers."""
    return [
        result
        for backend in answering(names, settings)
        for result in backend.reap(older_than_s=older_than_s, everything=everything)
    ]


def teardown_everywhere(
    trial_id: str, names: tuple[str, ...] = SWEPT_BACKENDS, settings: Settings | None = None
) -> list[TeardownResult]:
    """Tear one trial down on every backend that answers: a hook that runs after a crash does
    not know which backend the trial used, and teardown of nothing is cheap and verified."""
    return [backend.teardown(trial_id) for backend in answering(names, settings)]
