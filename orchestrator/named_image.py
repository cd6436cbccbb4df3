"""Images a trial spec names (the ``custom-image`` template): checked, never pulled, never built.

A sponsor whose model already runs as an image speaking a template's protocol (vLLM or
llama.cpp's server for the OpenAI chat API) names that image in ``model.image``. It must already
be loaded in the local engine: sandboxes are built and run offline, so a missing image is
refused at validation rather than fetched. The image is the model as deployed, so its content
digest stands where an MLflow model's file digest stands for the other templates.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import TemplateError
from orchestrator.model_artifacts import ModelArtifact
from orchestrator.templates import ImageRef, Template

if TYPE_CHECKING:
    from docker import DockerClient

    from orchestrator.settings import Settings
    from orchestrator.spec import ModelSpec

NAMED = "spec"


def spec_problems(template: Template, model: ModelSpec) -> list[str]:
    """What is inconsistent between the template and the model section (one line per field)."""
    if template.image_source == NAMED:
        problems = []
        if model.image is None:
            problems.append(
                f"model.image: template {template.name} serves a locally loaded image; "
                "name it in model.image.name"
            )
        if model.uri is not None:
            problems.append(
                f"model.uri: template {template.name} serves the image in model.image; leave it out"
            )
        return problems
    problems = []
    if model.image is not None:
        problems.append(
            f"model.image: template {template.name} builds its own image; model.image is only for "
            "templates that serve a named image (custom-image)"
        )
    if model.uri is None:
        problems.append(
            f"model.uri: required field is missing (template {template.name} serves an MLflow model)"
        )
    return problems


def resolved(template: Template, model: ModelSpec) -> Template:
    """The template as this trial runs it: the spec's image, port and health path filled in."""
    if template.image_source != NAMED or model.image is None:
        return template
    image = model.image
    return template.model_copy(
        update={
            "image": image.name,
            "port": image.port or template.port,
            "health_path": image.health_path or template.health_path,
        }
    )


def docker_client(settings: Settings) -> DockerClient:
    import docker
    import docker.errors

    try:
        client = (
            docker.DockerClient(base_url=settings.docker_host) if settings.docker_host else docker.from_env()
        )
        client.ping()
    except docker.errors.DockerException as exc:
        raise TemplateError(f"no Docker engine answers to look the image up ({exc})") from exc
    return client


def local_image(name: str, client: DockerClient) -> ImageRef:
    """The locally loaded image ``name``; TemplateError (one line) when the engine lacks it."""
    import docker.errors

    started = time.monotonic()
    try:
        image = client.images.get(name)
    except docker.errors.ImageNotFound as exc:
        raise TemplateError(
            f"image {name} is not loaded in the local Docker engine (images are never pulled: "
            "docker load or build it first)"
        ) from exc
    except docker.errors.APIError as exc:
        raise TemplateError(f"cannot look image {name} up: {exc.explanation or exc}") from exc
    return ImageRef(tag=name, id=str(image.id), built=False, seconds=time.monotonic() - started)


def image_artifact(name: str, dest: Path, settings: Settings) -> ModelArtifact:
    """The image as the trial's model record: its name, content digest, nothing to mount.

    ``dest`` is left empty; the sandbox's read-only model mount then carries nothing.
    """
    ref = local_image(name, docker_client(settings))
    dest.mkdir(parents=True, exist_ok=True)
    return ModelArtifact(
        uri=name,
        resolved=f"{name}@{ref.id}",
        path=dest,
        digest=ref.id.removeprefix("sha256:"),
        flavors=[],
    )
