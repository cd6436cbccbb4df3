"""The fixed text of exit reports in the languages of the participating jurisdictions.

The catalogues live in ``i18n/<language>.yaml`` so that reviewers who read the language but
not Python can correct them; English is the source, and every catalogue carries the same keys
and the same placeholders (a test holds them to it). Only fixed text is translated: what a
trial recorded (intended use, rules, references, error messages) stays verbatim, as signed.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from orchestrator.errors import RegSandboxError

I18N_DIR = Path(__file__).with_name("i18n")
SOURCE_LANGUAGE = "en"
LANGUAGES = ("en", "th", "vi", "id", "ms", "fil")


class CatalogueError(RegSandboxError, LookupError):
    """A translation catalogue is missing, malformed or lacks a key."""


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = "" if value is None else str(value)
    return flat


def placeholders(text: str) -> set[str]:
    """Names of the ``{placeholders}`` in a catalogue string."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@dataclass(frozen=True)
class Catalogue:
    """One language's fixed text, looked up by dotted key (``verdict.pass``, ``heading.results``)."""

    language: str
    texts: Mapping[str, str]

    @property
    def name(self) -> str:
        """The language's own name for itself, e.g. ภาษาไทย."""
        return self.texts["_meta.name"]

    @property
    def reviewed(self) -> bool:
        return not self.texts.get("_meta.review", "").startswith("machine")

    def __call__(self, key: str, **values: object) -> str:
        try:
            text = self.texts[key]
        except KeyError:
            raise CatalogueError(f"catalogue {self.language} has no key {key!r}") from None
        return text.format(**values) if values else text

    def verdict(self, verdict: str | None) -> str:
        return self(f"verdict.{verdict or 'none'}")

    def outcome(self, outcome: str) -> str:
        return self("outcome.insufficient" if outcome.startswith("insufficient") else f"outcome.{outcome}")


@functools.cache
def catalogue(language: str) -> Catalogue:
    """The catalogue of ``language`` (one of :data:`LANGUAGES`), read once per process."""
    if language not in LANGUAGES:
        raise CatalogueError(f"no catalogue for language {language!r}; known: {', '.join(LANGUAGES)}")
    path = I18N_DIR / f"{language}.yaml"
    tree = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(tree, Mapping):
        raise CatalogueError(f"{path} is not a mapping")
    return Catalogue(language, _flatten(tree))


@dataclass(frozen=True)
class JurisdictionInfo:
    """How a jurisdiction's annex is written and how it names the risk class."""

    code: str
    languages: tuple[str, ...]
    classes: Mapping[str, str]

    def local_class(self, risk_class: str) -> str:
        return self.classes.get(risk_class.strip().upper(), risk_class)


@functools.cache
def _jurisdictions() -> dict[str, JurisdictionInfo]:
    tree = yaml.safe_load((I18N_DIR / "jurisdictions.yaml").read_text(encoding="utf-8"))
    return {
        code: JurisdictionInfo(code, tuple(entry["languages"]), dict(entry.get("classes") or {}))
        for code, entry in tree.items()
    }


def jurisdiction(code: str) -> JurisdictionInfo:
    """Annex languages and class names of ``code``; English and the AMDD class when unknown."""
    return _jurisdictions().get(code.upper(), JurisdictionInfo(code, (SOURCE_LANGUAGE,), {}))


def jurisdiction_name(code: str, language: str) -> str:
    """The jurisdiction's name in ``language``, or its code for one the catalogues do not know."""
    return catalogue(language).texts.get(f"jurisdiction.{code.upper()}", code)
