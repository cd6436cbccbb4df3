"""Evaluation packs for chat candidates: a manifest and versioned items per folder.

A pack lives in ``evaluation_packs/<id>/`` (a data package found through
:mod:`orchestrator.package_data`) or in any folder a spec names by path: ``manifest.yaml`` says what
it measures, in which languages, with which grader and under which licence; ``items.yaml`` holds the
cases. Both are validated here, so a malformed pack stops a trial before any sandbox exists, with an
error naming the file and the field.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from orchestrator.errors import PackError
from orchestrator.package_data import data_dir

# BCP 47 primary tags of the languages the sample packs cover; a pack may add others.
Language = Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]
Grader = Literal["multiple-choice", "refusal", "crisis-line", "counterfactual", "canary", "injection"]
# Fields each grader needs on every item of its pack.
NEEDS: dict[str, tuple[str, ...]] = {
    "multiple-choice": ("answer",),
    "refusal": ("refuse",),
    "crisis-line": ("country",),
    "counterfactual": ("pair", "attribute", "decision"),
    "canary": ("canaries", "context"),
    "injection": ("attack_token",),
}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Source(_Model):
    what: str = Field(description="The fact or method taken from the source.")
    reference: str = Field(description="Where it comes from.")


class CrisisLine(_Model):
    status: Literal["verified", "reported", "unknown"] = Field(
        description="verified with the operator, reported by a secondary source, or unknown (no source)."
    )
    checked: dt.date = Field(description="When the entry was last checked.")
    name: str | None = None
    numbers: list[str] = Field(default_factory=list, description="Numbers as published.")
    note: str = ""

    @model_validator(mode="after")
    def _numbers_unless_unknown(self) -> CrisisLine:
        if (self.status == "unknown") != (not self.numbers):
            raise ValueError("numbers are given exactly when the status is not unknown")
        return self


class PackManifest(_Model):
    """What a pack measures and how it is graded."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="Pack id, the folder name.")
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$", description="Version of the items (semver).")
    title: str
    measures: str = Field(description="What the pack measures, for the report's methods section.")
    grader: Grader
    exact: bool = Field(description="False when the grader is a heuristic (reported as such).")
    languages: list[Language] = Field(min_length=1)
    licence: str
    sample_notice: str = Field(description="Says whether the items are samples awaiting clinical review.")
    sources: list[Source] = Field(default_factory=list)
    answer_lines: dict[Language, str] | None = Field(default=None, description="multiple-choice only.")
    refusal_markers: dict[Language, list[str]] | None = Field(default=None, description="refusal only.")
    crisis_lines: dict[str, CrisisLine] | None = Field(default=None, description="crisis-line only.")
    help_markers: dict[Language, list[str]] | None = Field(default=None, description="crisis-line only.")
    decision_pattern: str | None = Field(default=None, description="counterfactual only.")
    leak_threshold: float | None = Field(default=None, gt=0, le=1, description="canary only.")

    @model_validator(mode="after")
    def _grader_settings(self) -> PackManifest:
        needed = {
            "multiple-choice": ("answer_lines",),
            "refusal": ("refusal_markers",),
            "crisis-line": ("crisis_lines", "help_markers"),
            "counterfactual": ("decision_pattern",),
            "canary": ("leak_threshold",),
        }.get(self.grader, ())
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"grader {self.grader} needs {', '.join(missing)}")
        return self


class PackItem(_Model):
    """One case: the user's message (with optional system text or context) and what grading needs."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="Case id, unique in the pack.")
    language: Language
    prompt: str = Field(min_length=1, description="The user's message, verbatim.")
    system: str | None = Field(default=None, description="System message sent before the prompt.")
    context: str | None = Field(default=None, description="Context (e.g. a record) sent as a system message.")
    topic: str | None = None
    answer: Literal["A", "B", "C", "D"] | None = None
    refuse: bool | None = None
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    pair: str | None = None
    attribute: str | None = None
    decision: str | None = None
    canaries: list[str] | None = None
    attack_token: str | None = None

    def messages(self) -> list[dict[str, str]]:
        """The chat messages sent for this case."""
        out = [{"role": "system", "content": text} for text in (self.system, self.context) if text]
        return [*out, {"role": "user", "content": self.prompt}]


class Pack(_Model):
    manifest: PackManifest
    items: list[PackItem]
    sha256: str = Field(description="sha256 over the manifest and items files as read.")

    @property
    def key(self) -> str:
        return f"{self.manifest.id}@{self.manifest.version}"


def packs_dir() -> Path:
    return data_dir("evaluation_packs")


def known_packs() -> list[str]:
    return sorted(p.parent.name for p in packs_dir().glob("*/manifest.yaml"))


def _folder(name: str, base: Path | None) -> Path:
    if "/" in name or name.startswith("."):
        folder = Path(name) if base is None else (base / name)
        return folder.expanduser().resolve()
    return packs_dir() / name


def _read(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PackError(f"{path}: cannot read ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise PackError(f"{path}: not valid YAML ({exc})") from exc


def _problems(path: Path, exc: ValidationError, prefix: str = "") -> str:
    lines = [f"{prefix}{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
    return f"{path}: " + "; ".join(lines)


def load_pack(name: str, base: Path | None = None) -> Pack:
    """The pack called ``name`` (a built-in id) or at the folder ``name``; PackError naming the problem."""
    folder = _folder(name, base)
    manifest_path, items_path = folder / "manifest.yaml", folder / "items.yaml"
    if not manifest_path.is_file():
        raise PackError(f"unknown evaluation pack {name!r} (built in: {', '.join(known_packs())})")
    try:
        manifest = PackManifest.model_validate(_read(manifest_path))
    except ValidationError as exc:
        raise PackError(_problems(manifest_path, exc)) from exc
    raw = _read(items_path)
    if not isinstance(raw, list) or not raw:
        raise PackError(f"{items_path}: must be a non-empty list of items")
    items = []
    for index, entry in enumerate(raw):
        try:
            item = PackItem.model_validate(entry)
        except ValidationError as exc:
            raise PackError(_problems(items_path, exc, f"[{index}].")) from exc
        missing = [f for f in NEEDS[manifest.grader] if getattr(item, f) is None]
        if missing:
            raise PackError(f"{items_path}: [{index}] ({item.id}): grader {manifest.grader} needs {missing}")
        if item.language not in manifest.languages:
            raise PackError(f"{items_path}: [{index}] ({item.id}).language {item.language!r} not in manifest")
        items.append(item)
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise PackError(f"{items_path}: case id {item.id!r} repeats")
        seen.add(item.id)
    digest = hashlib.sha256(manifest_path.read_bytes() + b"\0" + items_path.read_bytes()).hexdigest()
    return Pack(manifest=manifest, items=items, sha256=digest)


def load_packs(names: list[str], base: Path | None = None, languages: list[str] | None = None) -> list[Pack]:
    """Several packs, optionally keeping only the cases in ``languages``; case ids must not collide."""
    packs = []
    seen: dict[str, str] = {}
    for name in names:
        pack = load_pack(name, base)
        if languages:
            pack = pack.model_copy(update={"items": [i for i in pack.items if i.language in languages]})
        for item in pack.items:
            if item.id in seen:
                raise PackError(f"case id {item.id!r} is in both {seen[item.id]} and {pack.manifest.id}")
            seen[item.id] = pack.manifest.id
        packs.append(pack)
    return packs


class PackData(_Model):
    """The packs a chat trial runs, as loaded and written to the trial's work directory."""

    packs: list[Pack]
    path: Path = Field(description="cases.jsonl in the work directory: every case as sent.")
    sha256: str = Field(description="sha256 of cases.jsonl.")

    @property
    def cases(self) -> int:
        return sum(len(p.items) for p in self.packs)

    @property
    def languages(self) -> list[str]:
        return sorted({i.language for p in self.packs for i in p.items})


def write_cases(packs: list[Pack], workdir: Path) -> PackData:
    """Write every case (pack, version, id, messages) to ``cases.jsonl``, read-only, and digest it."""
    import json

    path = workdir / "cases.jsonl"
    lines = [
        json.dumps(
            {"pack": p.manifest.id, "version": p.manifest.version, **i.model_dump(exclude_none=True)},
            ensure_ascii=False,
            sort_keys=True,
        )
        for p in packs
        for i in p.items
    ]
    if path.exists():
        path.chmod(0o644)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o444)
    return PackData(packs=packs, path=path, sha256=hashlib.sha256(path.read_bytes()).hexdigest())
