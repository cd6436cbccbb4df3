"""Evaluation kinds, by name: what a template serves decides how a trial evaluates it.

Kinds register by name like backends do (``"module:Class"``, imported when first asked for),
so adding one touches neither the lifecycle nor the backends.
"""

from __future__ import annotations

import importlib

from orchestrator.errors import TemplateError
from orchestrator.evaluation.base import COMMON_FAMILIES, Evaluation, EvaluationKind

__all__ = ["COMMON_FAMILIES", "Evaluation", "EvaluationKind", "get_kind", "known_kinds", "register_kind"]

_KINDS: dict[str, str | type[EvaluationKind]] = {
    "tabular": "orchestrator.evaluation.tabular:TabularKind",
    "chat": "orchestrator.evaluation.chat:ChatKind",
}


def register_kind(name: str, kind: str | type[EvaluationKind]) -> None:
    _KINDS[name] = kind


def known_kinds() -> list[str]:
    return sorted(_KINDS)


def get_kind(name: str) -> EvaluationKind:
    """The evaluation kind called ``name``; TemplateError when this installation has none."""
    found = _KINDS.get(name)
    if found is None:
        raise TemplateError(
            f"no evaluation kind {name!r} in this installation (known: {', '.join(known_kinds())})"
        )
    if isinstance(found, str):
        module, _, attr = found.partition(":")
        found = getattr(importlib.import_module(module), attr)
    assert isinstance(found, type)  # noqa: S101 - the registry holds classes or their paths
    return found()
