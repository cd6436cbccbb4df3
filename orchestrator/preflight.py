"""Everything about a trial spec that can be checked without running anything.

``regsandbox trial validate`` and the trial's own admission step call the same
:func:`preflight`, so a spec that validates is never refused at admission for a reason a
validation could have found: unknown template or evaluation kind, a jurisdiction without a
profile, a model URI of no known form, an image that is not loaded, a dataset path that does
not exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import PolicyError, RegSandboxError, SpecError, TemplateError
from orchestrator.policy_models import PolicyProfile
from orchestrator.spec import TrialSpec
from orchestrator.templates import Template, load_template

# models:/name@alias, models:/name/3, models:/name/latest, runs:/<id>/path, or any scheme://.
_MODEL_URI = re.compile(r"^(models:/[^/@]+(@[\w-]+|/\w+)|runs:/[0-9a-f]{8,}/.+|[a-z][a-z0-9+.-]*://.+)$")


@dataclass(frozen=True)
class Preflight:
    template: Template
    kind: str
    profiles: dict[str, PolicyProfile]


def _model_problem(uri: str) -> str | None:
    if uri.startswith(("models:", "runs:")) or "://" in uri:
        if _MODEL_URI.match(uri):
            return None
        return (
            f"model.uri: {uri!r} is not a model URI (models:/name@alias, models:/name/VERSION, runs:/ID/PATH)"
        )
    local = Path(uri).expanduser()
    if not local.is_dir():
        return f"model.uri: no model directory at {uri} (and not a models:/ or runs:/ URI)"
    if not (local / "MLmodel").is_file():
        return f"model.uri: {uri} is not an MLflow model (no MLmodel file)"
    return None


def _model_problems(template: Template, spec: TrialSpec) -> tuple[Template, list[str]]:
    """The template as the trial runs it, and what is wrong with the model it names."""
    from orchestrator import named_image

    problems = named_image.spec_problems(template, spec.model)
    if spec.model.uri is not None:
        problem = _model_problem(spec.model.uri)
        problems.extend([problem] if problem else [])
    image = spec.model.image
    if image is not None and not problems:
        from orchestrator.settings import get_settings

        try:
            named_image.local_image(image.name, named_image.docker_client(get_settings()))
        except TemplateError as exc:
            problems.append(f"model.image.name: {exc}")
    return named_image.resolved(template, spec.model), problems


def _data_problems(spec: TrialSpec, template: Template | None) -> list[str]:
    """A chat template needs evaluation packs, a tabular one needs rows; every pack must load."""
    from orchestrator.evaluation.packs import load_pack

    problems = []
    packs = spec.data.source == "packs"
    if template is not None and (template.kind == "chat") != packs:
        wanted = "packs" if template.kind == "chat" else "synthetic or approved"
        problems.append(
            f"data.source: template {template.name!r} serves {template.kind} models, evaluated on "
            f"{wanted} data, not {spec.data.source}"
        )
    for index, name in enumerate(spec.data.packs or []):
        try:
            pack = load_pack(name)
        except RegSandboxError as exc:
            problems.append(f"data.packs[{index}]: {exc}")
            continue
        languages = spec.data.languages
        if languages and not set(languages) & {i.language for i in pack.items}:
            problems.append(
                f"data.packs[{index}]: {pack.manifest.id} has no case in data.languages {languages}"
            )
    return problems


def preflight(spec: TrialSpec, source: str = "<spec>") -> Preflight:
    """Load what the trial needs and check what it names; raise SpecError listing every problem."""
    from orchestrator.evaluation import known_kinds
    from orchestrator.policy import load_profile

    problems: list[str] = []
    template: Template | None = None
    try:
        template = load_template(spec.model.template)
    except TemplateError as exc:
        problems.append(f"model.template: {exc}")
    if template is not None and template.kind not in known_kinds():
        problems.append(
            f"model.template: template {template.name!r} serves {template.kind!r} models, an evaluation "
            f"kind this installation lacks (known: {', '.join(known_kinds())})"
        )
    profiles: dict[str, PolicyProfile] = {}
    for index, code in enumerate(spec.jurisdictions):
        try:
            profiles[code] = load_profile(code)
        except (PolicyError, LookupError, RegSandboxError) as exc:
            problems.append(f"jurisdictions[{index}]: {exc}")
    if template is not None:
        template, found = _model_problems(template, spec)
        problems.extend(found)
    elif spec.model.uri is not None:
        problems.extend(filter(None, [_model_problem(spec.model.uri)]))
    problems += _data_problems(spec, template)
    approved = spec.data.approved
    if approved is not None and not approved.path.is_file():
        problems.append(f"data.approved.path: no file at {approved.path}")
    reference = getattr(spec.data.reference, "path", None)
    if reference is not None and not reference.is_file():
        problems.append(f"data.reference.path: no file at {reference}")
    if problems or template is None:
        raise SpecError(source, problems)
    return Preflight(template=template, kind=template.kind, profiles=profiles)
