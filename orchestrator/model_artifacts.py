"""Fetch the candidate model from MLflow onto the host, so it can be mounted read-only.

The sandbox never talks to MLflow: the platform resolves the URI, downloads the artefacts
into the trial's work directory and fingerprints them, and that exact copy is what runs.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import ModelError
from orchestrator.settings import Settings
from orchestrator.tracking import configure_mlflow


class ModelArtifact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    uri: str = Field(description="The URI the spec named.")
    resolved: str = Field(description="What it pointed to when fetched, e.g. models:/diabetes-risk/3.")
    path: Path = Field(description="Local copy that is mounted read-only into the sandbox.")
    digest: str = Field(description="sha256 over the relative paths and bytes of every model file.")
    flavors: list[str]
    input_columns: list[str] | None = Field(default=None, description="Columns of the model signature.")


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def registered_version(resolved: str) -> tuple[str, str] | None:
    """(name, version) of a resolved ``models:/<name>/<version>`` URI; None for anything else."""
    if not resolved.startswith("models:/"):
        return None
    name, _, version = resolved[len("models:/") :].partition("/")
    return (name, version) if name and version.isdigit() else None


def _resolve(uri: str) -> str:
    if not uri.startswith("models:/"):
        return uri
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    name_part = uri[len("models:/") :]
    client = MlflowClient()
    try:
        if "@" in name_part:
            name, alias = name_part.split("@", 1)
            version = client.get_model_version_by_alias(name, alias)
            return f"models:/{name}/{version.version}"
        return uri
    except MlflowException as exc:
        raise ModelError(f"model {uri} is not in the registry: {exc.message}") from exc


def fetch_model(uri: str, dest: Path, settings: Settings) -> ModelArtifact:
    """Download (or copy) the model into ``dest`` and describe it; ModelError if impossible."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    configure_mlflow(settings)
    local = Path(uri).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if local.is_dir():
            resolved = str(local.resolve())
            path = Path(shutil.copytree(local, dest / local.name, dirs_exist_ok=True))
        else:
            resolved = _resolve(uri)
            path = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dest)))
    except (MlflowException, OSError) as exc:
        raise ModelError(f"cannot fetch model {uri}: {exc}") from exc
    mlmodel = path / "MLmodel"
    if not mlmodel.is_file():
        raise ModelError(f"{uri} is not an MLflow model (no MLmodel file)")
    meta = yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}
    if "python_function" not in meta.get("flavors", {}):
        raise ModelError(f"{uri} has no python_function flavour, so no template can serve it")
    # The sandbox runs as another user: everything must be world-readable, nothing writable.
    for item in [path, *path.rglob("*")]:
        item.chmod(0o755 if item.is_dir() else 0o444)
    columns = None
    inputs = (meta.get("signature") or {}).get("inputs")
    if inputs:
        import json

        columns = [col["name"] for col in json.loads(inputs) if "name" in col] or None
    return ModelArtifact(
        uri=uri,
        resolved=resolved,
        path=path,
        digest=tree_digest(path),
        flavors=sorted(meta.get("flavors", {})),
        input_columns=columns,
    )
