"""Sandbox templates: load ``sandbox_templates/<name>/template.yaml`` and build their images.

Images are built offline: the Python packages a template needs are downloaded on the host
into a wheelhouse (pinned to the platform's own versions, so a model logged here loads the
same way inside the sandbox) and installed in the image with ``--no-index``. The image tag
is a content hash of everything that goes into it, so an unchanged template is never
rebuilt.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.errors import TemplateError
from orchestrator.package_data import data_dir

if TYPE_CHECKING:
    from docker import DockerClient

    from orchestrator.settings import Settings

TEMPLATES_DIR = data_dir("sandbox_templates")
# Files of a template folder that end up in its image (and so in its content hash).
_IMAGE_FILES = ("Dockerfile", "server.py", "template.yaml")


class TemplateResources(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    cpus: float = Field(default=1.0, gt=0)
    memory_mb: int = Field(default=1024, ge=64)


class Template(BaseModel):
    """A way of serving a model inside a sandbox, with its protocol contract."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="Template name, the folder under sandbox_templates/.")
    description: str = ""
    kind: Literal["tabular", "chat"]
    protocol: Literal["mlflow-invocations", "openai-chat"]
    port: int = Field(gt=0, lt=65536, description="Port the server listens on inside the sandbox.")
    health_path: str = Field(description="GET path that answers 200 once the model is loaded.")
    paths: list[str] = Field(description="Paths the gateway forwards; everything else is refused.")
    requirements: list[str] = Field(
        default_factory=list, description="Python distributions installed offline."
    )
    resources: TemplateResources = Field(default_factory=TemplateResources)
    answer_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="How long the gateway waits for one answer (a language model writing one is slow).",
    )
    image_source: Literal["build", "spec"] = Field(
        default="build",
        description=(
            "build: the image is built from this folder; spec: the trial spec names a locally "
            "loaded image (model.image) and nothing is built."
        ),
    )
    image: str | None = Field(
        default=None,
        description="The image named by the trial spec, once resolved for a trial (image_source: spec).",
    )
    folder: Path = Field(default=Path(), exclude=True, description="Folder the template was loaded from.")


class ImageRef(BaseModel):
    model_config = ConfigDict(frozen=True)
    tag: str
    id: str
    built: bool = Field(description="False when an image with the same content hash was already present.")
    seconds: float


def load_template(name: str, templates_dir: Path | None = None) -> Template:
    folder = (templates_dir or TEMPLATES_DIR) / name
    path = folder / "template.yaml"
    if not path.is_file():
        known = sorted(p.parent.name for p in (templates_dir or TEMPLATES_DIR).glob("*/template.yaml"))
        raise TemplateError(f"unknown sandbox template {name!r} (known: {', '.join(known) or 'none'})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Template.model_validate({**data, "folder": folder})
    except (yaml.YAMLError, ValidationError, TypeError) as exc:
        raise TemplateError(f"{path}: {exc}") from exc


def pinned_requirements(template: Template) -> list[str]:
    """The template's requirements pinned to the versions installed in this interpreter."""
    pins = []
    for dist in template.requirements:
        try:
            pins.append(f"{dist}=={importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError as exc:
            raise TemplateError(
                f"template {template.name} needs {dist}, which is not installed here"
            ) from exc
    return pins


def content_hash(template: Template, base_image_id: str, pins: list[str]) -> str:
    digest = hashlib.sha256()
    for name in _IMAGE_FILES:
        path = template.folder / name
        if path.exists():
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(base_image_id.encode() + b"\0" + "\n".join(pins).encode())
    return digest.hexdigest()


def _wheelhouse(pins: list[str], cache_dir: Path) -> Path:
    """Download (once per set of pins) every wheel the pins need, for an offline install."""
    key = hashlib.sha256("\n".join(pins).encode()).hexdigest()[:16]
    target = cache_dir / f"wheelhouse-{key}"
    if (target / "requirements.txt").is_file():
        return target
    partial = cache_dir / f".wheelhouse-{key}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--only-binary=:all:",
        "-d",
        str(partial),
        *pins,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise TemplateError(f"could not download wheels for {' '.join(pins)}:\n{proc.stderr[-2000:]}")
    (partial / "requirements.txt").write_text("\n".join(pins) + "\n", encoding="utf-8")
    partial.rename(target)
    return target


def ensure_image(template: Template, settings: Settings, client: DockerClient) -> ImageRef:
    """Return the template's image, building it only when no image has the same content hash."""
    import docker.errors

    if template.image_source == "spec":
        from orchestrator.named_image import local_image

        if template.image is None:
            raise TemplateError(f"template {template.name} serves an image the trial spec names; none given")
        return local_image(template.image, client)
    started = time.monotonic()
    try:
        base = client.images.get(settings.base_image)
    except docker.errors.ImageNotFound as exc:
        raise TemplateError(
            f"base image {settings.base_image} is missing: run scripts/build-base-image.sh "
            "(offline) or set REGSANDBOX_BASE_IMAGE to an image you can pull"
        ) from exc
    pins = pinned_requirements(template)
    tag = f"regsandbox/{template.name}:{content_hash(template, base.id, pins)[:16]}"
    try:
        image = client.images.get(tag)
        return ImageRef(tag=tag, id=image.id, built=False, seconds=time.monotonic() - started)
    except docker.errors.ImageNotFound:
        pass
    settings.ensure_dirs()
    wheels = _wheelhouse(pins, settings.build_dir)
    context = settings.build_dir / f"context-{template.name}"
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir(parents=True)
    # Exactly the hashed files, copied without their modes: an installed template folder also
    # holds bytecode caches and may be read-only (a system or store install).
    for name in _IMAGE_FILES:
        if (template.folder / name).exists():
            shutil.copyfile(template.folder / name, context / name)
    shutil.copytree(wheels, context / "wheels")
    try:
        image, _ = client.images.build(
            path=str(context),
            tag=tag,
            buildargs={"BASE_IMAGE": settings.base_image},
            rm=True,
            forcerm=True,
            # Everything comes from the build context (an offline build): the build steps need no
            # network, and get none, so they work on an engine without its default bridge too.
            network_mode="none",
            labels={"regsandbox.template": template.name},
        )
    except docker.errors.BuildError as exc:
        log = "".join(str(chunk.get("stream", "")) for chunk in exc.build_log)[-3000:]
        raise TemplateError(f"building {tag} failed: {exc.msg}\n{log}") from exc
    finally:
        shutil.rmtree(context, ignore_errors=True)
    return ImageRef(tag=tag, id=image.id, built=True, seconds=time.monotonic() - started)
