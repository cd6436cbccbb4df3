"""The custom-image template's part of the spec: model.image, and which template needs what.

Whether the named image is loaded is checked against the real engine in
tests/integration/test_custom_image.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.errors import SpecError
from orchestrator.named_image import resolved, spec_problems
from orchestrator.spec import parse_spec
from orchestrator.templates import load_template


def _spec(model: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "chat-candidate",
        "sponsor": "example-sponsor",
        "intended_use": "Answer health questions from the public",
        "risk_class": "B",
        "model": model,
        "data": {"source": "packs", "packs": ["medical-qa"]},
        "jurisdictions": ["SG"],
    }


def test_the_template_serves_a_named_image_over_the_openai_chat_api() -> None:
    template = load_template("custom-image")
    assert (template.kind, template.protocol, template.image_source) == ("chat", "openai-chat", "spec")
    assert set(template.paths) == {"/v1/chat/completions", "/v1/models"}


def test_the_spec_names_image_port_and_health_path() -> None:
    spec = parse_spec(
        _spec(
            {
                "template": "custom-image",
                "image": {"name": "localhost:5000/org/vllm:v1.2", "port": 8080, "health_path": "/health"},
            }
        )
    )
    template = load_template("custom-image")
    assert spec_problems(template, spec.model) == []
    run = resolved(template, spec.model)
    assert (run.image, run.port, run.health_path) == ("localhost:5000/org/vllm:v1.2", 8080, "/health")
    # Without port and health path the template's defaults apply.
    plain = parse_spec(_spec({"template": "custom-image", "image": {"name": "regsandbox/smollm2:0.1.2"}}))
    run = resolved(template, plain.model)
    assert (run.port, run.health_path) == (8000, "/v1/models")
    assert plain.model.source == "regsandbox/smollm2:0.1.2"


def test_bad_image_fields_are_each_named() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(
            _spec(
                {
                    "template": "custom-image",
                    "image": {"name": "Not An Image", "port": 70000, "health_path": "health", "pull": True},
                }
            )
        )
    fields = sorted(problem.split(":")[0] for problem in info.value.problems)
    assert fields == ["model.image.health_path", "model.image.name", "model.image.port", "model.image.pull"]
    assert any("'Not An Image' is not an image reference" in p for p in info.value.problems)


def test_template_and_model_section_must_agree() -> None:
    custom, pyfunc = load_template("custom-image"), load_template("mlflow-pyfunc")
    without_image = parse_spec(_spec({"template": "custom-image"})).model
    assert spec_problems(custom, without_image) == [
        "model.image: template custom-image serves a locally loaded image; name it in model.image.name"
    ]
    both = parse_spec(
        _spec({"template": "custom-image", "uri": "models:/x@candidate", "image": {"name": "a/b:1"}})
    ).model
    assert [p.split(":")[0] for p in spec_problems(custom, both)] == ["model.uri"]
    image_for_pyfunc = parse_spec(_spec({"image": {"name": "a/b:1"}})).model
    assert [p.split(":")[0] for p in spec_problems(pyfunc, image_for_pyfunc)] == ["model.image", "model.uri"]
