"""The kubernetes backend against a real control plane (``make test-k8s`` starts one with
scripts/k8s-local.sh, exports its KUBECONFIG and node engine, runs these tests and stops it).

Without a cluster these tests skip, except under ``REGSANDBOX_REQUIRE_DOCKER=1`` (CI), where a
missing cluster fails them: the real-cluster tests can never silently vanish.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.backends.kubernetes import KubernetesBackend
from orchestrator.errors import BackendError
from orchestrator.settings import Settings
from tests.conftest import _missing
from tests.integration.models import tiny_model


@pytest.fixture(scope="session")
def kube_settings(platform_home: Path) -> Settings:
    if not os.environ.get("KUBECONFIG"):
        _missing("no KUBECONFIG: run `make test-k8s` (it starts scripts/k8s-local.sh)")
    # The local control plane has no network plugin: its NetworkPolicy is stored, not enforced.
    # These tests accept that explicitly; test_attestation shows the refusal without it.
    return Settings(home=platform_home, kube_accept_unenforced_network_policy=True)


@pytest.fixture(scope="session")
def kube(kube_settings: Settings) -> KubernetesBackend:
    backend = KubernetesBackend(kube_settings)
    try:
        backend.ping()
    except BackendError as exc:
        _missing(str(exc))
    return backend


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("models") / "tiny")
