"""The custom-image template against the real engine: a missing image is refused at validation
(one line naming the field, nothing pulled), and a loaded OpenAI-API image is served hardened in
a sandbox (SmolLM2, marker smollm2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from orchestrator.backends.docker import DockerBackend
from orchestrator.named_image import resolved
from orchestrator.settings import Settings
from orchestrator.spec import ModelSpec, Resources
from orchestrator.templates import load_template
from tests.integration.chat_images import ROOT, smollm2_image

pytestmark = pytest.mark.docker


def _spec(tmp_path: Path, image: str) -> Path:
    data: dict[str, Any] = {
        "name": "chat-candidate",
        "sponsor": "example-sponsor",
        "intended_use": "Answer health questions from the public",
        "risk_class": "B",
        "model": {"template": "custom-image", "image": {"name": image}},
        "data": {"source": "packs", "packs": ["medical-qa"]},
        "jurisdictions": ["SG"],
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _validate(path: Path, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "trial", "validate", str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "REGSANDBOX_HOME": str(home)},
    )


def test_an_image_the_engine_lacks_is_refused_in_one_line(tmp_path: Path, docker_client: Any) -> None:
    missing = "regsandbox/not-loaded-anywhere:0.0.1"
    before = {tag for image in docker_client.images.list() for tag in image.tags}
    result = _validate(_spec(tmp_path, missing), tmp_path / "home")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        f"{tmp_path / 'spec.yaml'}: model.image.name: image {missing} is not loaded in the local Docker "
        "engine (images are never pulled: docker load or build it first)"
    ]
    assert "Traceback" not in result.stderr
    after = {tag for image in docker_client.images.list() for tag in image.tags}
    assert missing not in after and after >= before  # nothing was pulled


def test_a_loaded_image_passes_the_image_check(tmp_path: Path, docker_client: Any) -> None:
    # Any loaded image satisfies validation; whether it serves the protocol shows at deployment.
    result = _validate(_spec(tmp_path, "regsandbox/base:bookworm"), tmp_path / "home")
    assert result.returncode == 0, result.stderr


@pytest.mark.smollm2
@pytest.mark.slow
def test_smollm2_is_served_hardened_in_a_sandbox(tmp_path: Path, docker_client: Any) -> None:
    image = smollm2_image()
    settings = Settings(home=tmp_path / "home")
    settings.ensure_dirs()
    backend = DockerBackend(settings, docker_client)
    template = resolved(
        load_template("custom-image"), ModelSpec(template="custom-image", image={"name": image})
    )
    trial_id = "custom-image-serve-test"
    sandbox = backend.provision(trial_id, Resources())
    try:
        endpoint = backend.deploy(sandbox, template, tmp_path / "nothing-to-mount")
        assert endpoint.image == image and endpoint.image_digest.startswith("sha256:")
        container = docker_client.containers.get(endpoint.container)
        config = container.attrs["HostConfig"]
        assert config["ReadonlyRootfs"] and config["CapDrop"] == ["ALL"]
        assert container.attrs["Config"]["User"] == settings.sandbox_user
        models = httpx.get(endpoint.url + "/v1/models", timeout=10).json()
        assert [m["id"] for m in models["data"]] == ["smollm2-135m-instruct"]
        question = {"messages": [{"role": "user", "content": "Is paracetamol an NSAID?"}], "max_tokens": 24}
        answers = [
            httpx.post(endpoint.url + "/v1/chat/completions", json=question, timeout=60).json()
            for _ in range(2)
        ]
        # Temperature 0 and a fixed seed unless a request asks otherwise: the same answer twice.
        texts = [a["choices"][0]["message"]["content"] for a in answers]
        assert texts[0] and texts[0] == texts[1]
        assert answers[0]["usage"]["completion_tokens"] > 0
    finally:
        result = backend.teardown(trial_id)
    assert result.verified
