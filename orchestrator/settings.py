"""One settings object for the whole platform (environment prefix ``REGSANDBOX_``).

Everything lives under the home directory unless told otherwise, so a trial on a laptop
needs no service: the platform database, the MLflow store and artefacts, reports and
signing keys. Pointing ``MLFLOW_TRACKING_URI`` / ``PREFECT_API_URL`` at servers switches to
the distributed setup without code changes.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Platform configuration; every field can be set as ``REGSANDBOX_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="REGSANDBOX_", frozen=True, extra="ignore")

    home: Path = Field(
        default=Path(".regsandbox"),
        description="Directory holding every local store: MLflow, reports, keys, trial work dirs.",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking URI. Defaults to MLFLOW_TRACKING_URI, else a SQLite store under home.",
    )
    database_url: str | None = Field(
        default=None,
        description=(
            "Platform database (users, trials, decisions, audit): a SQLAlchemy URL such as "
            "postgresql+psycopg://user:pass@host/db. Default: SQLite at home/platform.db."
        ),
    )
    platform_url: str | None = Field(
        default=None,
        description=(
            "Public address of the platform (API, portal, developer gateway), e.g. https://sandbox.example; "
            "trials link their Prefect runs to it. Set by regsandbox up."
        ),
    )
    endpoint_rate_per_s: float = Field(
        default=20.0,
        gt=0,
        description="Requests per second one developer token may send to a trial's endpoint.",
    )
    endpoint_burst: int = Field(
        default=40, ge=1, description="Requests a token may send at once before the rate applies."
    )
    # A name, not a fixed set: backends register themselves (orchestrator.backends.register_backend).
    backend: str = Field(
        default="auto",
        description="Isolation backend: docker, process, kubernetes, or auto (docker if an engine answers).",
    )
    max_sandboxes: int = Field(
        default=4, ge=1, le=256, description="Sandboxes that may run at once on this host (across processes)."
    )
    slot_wait_s: float = Field(
        default=3600.0,
        gt=0,
        description=(
            "How long a trial waits in the queue for a free sandbox slot before it fails; apart from "
            "the trial's own timeout, which counts from when it gets its slot."
        ),
    )
    base_image: str = Field(
        default="regsandbox/base:bookworm",
        description=(
            "Base image for sandbox templates. The default is built locally and offline by "
            "scripts/build-base-image.sh; where a registry is reachable, python:3.11-slim works too."
        ),
    )
    docker_host: str | None = Field(default=None, description="Docker engine address (else DOCKER_HOST).")
    gateway_host: str = Field(default="127.0.0.1", description="Address the developer gateway binds to.")
    # Generous: on a busy host several model servers importing their libraries at once can take
    # minutes, and a slow start is not a failed trial.
    health_timeout_s: float = Field(
        default=180.0, gt=0, description="How long a model server may take to become healthy."
    )
    # Evidence outlives a tracking-server outage: at the end of monitoring the trial waits this
    # long for MLflow to come back before it reports points as not stored.
    mlflow_flush_timeout_s: float = Field(
        default=300.0,
        gt=0,
        description="How long a trial waits, when monitoring ends, for MLflow to store every queued point.",
    )
    pdf_workers: int = Field(
        default=1,
        ge=0,
        description=(
            "Worker processes that lay out a report's annexes while the report itself is laid out; "
            "0 lays out the whole PDF in the calling process."
        ),
    )
    report_pdf: bool = Field(
        default=True,
        description="Render the exit report's PDF (JSON and HTML are always written); needs the fonts.",
    )
    kubeconfig: Path | None = Field(
        default=None,
        description=(
            "Kubeconfig of the cluster the kubernetes backend uses (else KUBECONFIG, ~/.kube/config, "
            "or the in-cluster service account). scripts/k8s-local.sh env prints one for a local cluster."
        ),
    )
    kube_context: str | None = Field(
        default=None, description="Kubeconfig context (default: the current one)."
    )
    kube_node_docker_host: str | None = Field(
        default=None,
        description=(
            "Docker engine of a local cluster's node (kind, k3s with docker, scripts/k8s-local.sh): template "
            "images built here are loaded into it. Unset: the cluster must be able to pull the images."
        ),
    )
    kube_gateway_namespace: str = Field(
        default="regsandbox", description="Namespace of the platform whose gateway may reach sandboxes."
    )
    kube_gateway_labels: dict[str, str] = Field(
        default={"app.kubernetes.io/name": "regsandbox", "app.kubernetes.io/component": "platform"},
        description="Labels of the platform pods (the gateway) that the sandboxes' NetworkPolicy admits.",
    )
    kube_gpu_resource: str = Field(
        default="nvidia.com/gpu", description="Extended resource name requested for a spec's gpus."
    )
    kube_teardown_timeout_s: float = Field(
        default=120.0, gt=0, description="How long teardown waits for a trial's namespace to be gone."
    )
    kube_accept_unenforced_network_policy: bool = Field(
        default=False,
        description=(
            "Let trials proceed on a cluster where the sandbox NetworkPolicy could not be shown to be "
            "enforced (no enforcing network plugin). The attestation and the report still say so."
        ),
    )
    sandbox_user: str = Field(default="10001:10001", description="uid:gid the model server runs as.")
    tmpfs_size_mb: int = Field(default=64, gt=0, description="Size of the sandbox's writable, noexec /tmp.")
    pids_limit: int = Field(default=256, gt=0, description="Maximum processes/threads inside a sandbox.")
    fail_at: str | None = Field(
        default=None,
        description=(
            "Fault drill: name of a trial step (provision, deploy, run_workload ...) at which the "
            "trial fails on purpose, to exercise teardown and failure reporting."
        ),
    )

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        # Absolute so that MLflow URIs, bind mounts and subprocesses agree whatever their cwd.
        return value.expanduser().resolve()

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        env = os.environ.get("MLFLOW_TRACKING_URI")
        if env:
            return env
        return f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def artifacts_dir(self) -> Path:
        """Where experiments created by the platform keep their artefacts (local store only)."""
        return self.home / "mlartifacts"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def trials_dir(self) -> Path:
        return self.home / "trials"

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def build_dir(self) -> Path:
        return self.home / "build"

    def ensure_dirs(self) -> None:
        for path in (
            self.home,
            self.artifacts_dir,
            self.reports_dir,
            self.trials_dir,
            self.keys_dir,
            self.build_dir,
        ):
            path.mkdir(parents=True, exist_ok=True)


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
