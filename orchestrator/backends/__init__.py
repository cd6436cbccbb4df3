"""Isolation backends behind one interface; heavy clients are imported only when used."""

from __future__ import annotations

from orchestrator.backends.base import (
    Endpoint,
    IsolationControl,
    ResourceStats,
    Sandbox,
    SandboxBackend,
    TeardownResult,
)
from orchestrator.errors import BackendError
from orchestrator.settings import Settings, get_settings

__all__ = [
    "Endpoint",
    "IsolationControl",
    "ResourceStats",
    "Sandbox",
    "SandboxBackend",
    "TeardownResult",
    "get_backend",
]


def get_backend(name: str | None = None, settings: Settings | None = None) -> SandboxBackend:
    settings = settings or get_settings()
    name = name or settings.backend
    if name == "docker":
        from orchestrator.backends.docker import DockerBackend

        return DockerBackend(settings)
    raise BackendError(f"backend {name!r} is not available in this version (available: docker)")
