"""Build the sample chat candidate: the rule-based health assistant from the developer "acme-health".

It is logged as an MLflow ChatModel from code (``examples/health_assistant/assistant.py``) with its
knowledge file as an artefact, and registered as ``models:/health-assistant@candidate`` with the demo
weaknesses switched on (``DEMO_WEAKNESSES``), so the demo trial's report has real findings. A
configuration with no weaknesses answers every sample pack item correctly.

Run ``python -m examples.build_health_assistant [--force] [--clean]``; it prints the model URI.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

MODEL_NAME = "health-assistant"
MODEL_ALIAS = "candidate"
EXPERIMENT = "candidates"
DEVELOPER = "acme-health"
HERE = Path(__file__).resolve().parent / "health_assistant"
CODE = HERE / "assistant.py"
KNOWLEDGE = HERE / "knowledge.yaml"
# The demo switches on some weaknesses, each of which a sample pack should catch.
DEMO_WEAKNESSES: dict[str, Any] = {
    "english_only_languages": ["vi"],
    "missing_crisis_countries": ["MY"],
    "leak_canary": True,
    "flip_attributes": ["migrant-worker"],
    "wrong_facts": {"paracetamol-max-daily-dose": "8 g"},
}
NO_WEAKNESSES: dict[str, Any] = {}


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"mlflow-skinny=={version('mlflow-skinny')}", f"pyyaml=={version('pyyaml')}"]


def save_assistant(path: Path, config: dict[str, Any] | None = None) -> Path:
    """Write the assistant as a local MLflow model directory with ``config`` as its weaknesses."""
    import mlflow.pyfunc

    mlflow.pyfunc.save_model(
        path=str(path),
        python_model=str(CODE),
        artifacts={"knowledge": str(KNOWLEDGE)},
        model_config=dict(config or {}),
        pip_requirements=_requirements(),
    )
    return path


def ensure_assistant(
    name: str = MODEL_NAME, alias: str = MODEL_ALIAS, force: bool = False, clean: bool = False
) -> str:
    """Return ``models:/<name>@<alias>``, logging and registering the assistant first if missing."""
    import mlflow
    from mlflow import MlflowClient

    from examples.train_candidate import _existing_version
    from orchestrator.settings import get_settings
    from orchestrator.tracking import configure_mlflow, ensure_experiment

    settings = get_settings()
    configure_mlflow(settings)
    client = MlflowClient()
    uri = f"models:/{name}@{alias}"
    if not force and _existing_version(client, name, alias) is not None:
        return uri
    config = NO_WEAKNESSES if clean else DEMO_WEAKNESSES
    with mlflow.start_run(experiment_id=ensure_experiment(settings, EXPERIMENT), run_name=f"{name}-build"):
        mlflow.set_tags({"developer": DEVELOPER, "kind": "rule-based chat"})
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(CODE),
            artifacts={"knowledge": str(KNOWLEDGE)},
            model_config=config,
            pip_requirements=_requirements(),
            registered_model_name=name,
        )
    version = str(info.registered_model_version)
    client.set_registered_model_alias(name, alias, version)
    client.update_registered_model(
        name,
        description=(
            "Multilingual health information assistant (rules and a small knowledge file, no weights). "
            f"Developer: {DEVELOPER}. Answers in en, th, vi, id, ms, fil; multiple-choice facts also in "
            "my, km, lo, ta, zh."
        ),
    )
    for key, value in {"developer": DEVELOPER, "intended_use": "Health information for the public"}.items():
        client.set_registered_model_tag(name, key, value)
    return uri


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Log and register the sample health-assistant candidate.")
    parser.add_argument("--name", default=MODEL_NAME, help="registered model name")
    parser.add_argument("--alias", default=MODEL_ALIAS, help="alias pointing at the new version")
    parser.add_argument("--force", action="store_true", help="log a new version even if the alias exists")
    parser.add_argument("--clean", action="store_true", help="switch every weakness off")
    arguments = parser.parse_args(argv)
    print(ensure_assistant(arguments.name, arguments.alias, arguments.force, arguments.clean))
    return 0


if __name__ == "__main__":
    sys.exit(main())
