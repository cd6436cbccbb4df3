"""Build the report's model card from what the developer declared in the MLflow registry.

The convention a developer follows: the registered model's (or the version's) description is
the summary, and tags named ``model_card.<field>`` carry the CHAI Applied Model Card fields
(``developer``, ``release``, ``summary``, ``inputs``, ``outputs``, ``training_data``, ``risks``,
``bias_mitigation``, ``maintenance``). Version tags override model tags. This module takes plain
values, not MLflow objects, so that it runs without MLflow and is tested without a registry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from orchestrator.reports.sections import ModelCard

TAG_PREFIX = "model_card."
FIELDS = (
    "developer",
    "release",
    "summary",
    "inputs",
    "outputs",
    "training_data",
    "risks",
    "bias_mitigation",
    "maintenance",
)


def model_card_from_registry(
    *,
    name: str,
    version: str | None,
    source: str,
    model_description: str | None = None,
    version_description: str | None = None,
    model_tags: Mapping[str, str] | None = None,
    version_tags: Mapping[str, str] | None = None,
    created: dt.datetime | None = None,
) -> ModelCard | None:
    """The model card, or None when the registry entry declares nothing (no description, no tags)."""
    tags = {**(model_tags or {}), **(version_tags or {})}
    declared = {k.removeprefix(TAG_PREFIX): v.strip() for k, v in tags.items() if k.startswith(TAG_PREFIX)}
    declared = {k: v for k, v in declared.items() if v}
    summary = (
        declared.pop("summary", None)
        or (version_description or "").strip()
        or (model_description or "").strip()
    )
    if not declared and not summary:
        return None
    fields = {field: declared.pop(field, None) for field in FIELDS if field != "summary"}
    if fields["release"] is None and created is not None:
        # Without a declared release, the registry's own record of when this version appeared.
        fields["release"] = f"version {version} registered {created.astimezone(dt.UTC).date().isoformat()}"
    return ModelCard(
        name=name,
        version=version,
        summary=summary or None,
        source=source,
        other=dict(sorted(declared.items())),
        **fields,
    )
