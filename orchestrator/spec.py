"""The trial spec: what a sponsor asks the sandbox to run, and under which rules.

Loaded from YAML, frozen, unknown keys rejected; every field carries a description because
the same model is the Prefect UI form, the JSON Schema and the reference documentation.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from orchestrator.data.contract_suites import is_contract_file, load_contract
from orchestrator.errors import DataError, SpecError

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]
JurisdictionCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
# A data contract is named like a built-in suite, or given as a YAML file in the suite format.
SUITE_NAME = r"^[a-z0-9][a-z0-9-]*$"
CLINICAL_SUITE = "clinical-tabular"
GENERIC_SUITE = "generic-tabular"


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# A Docker image reference: [registry[:port]/]path[:tag][@sha256:digest], lower-case path.
IMAGE_REF = (
    r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)


class ImageSpec(_Spec):
    name: str = Field(
        max_length=255,
        description=(
            "Docker image already loaded in the local engine, e.g. regsandbox/smollm2:0.1.2. "
            "It is never pulled: load it (docker load) or build it first."
        ),
    )
    port: int | None = Field(
        default=None,
        gt=0,
        lt=65536,
        description="Port its server listens on (also given to it as PORT). Default: the template's.",
    )
    health_path: str | None = Field(
        default=None,
        description="GET path answering 200 once the model is loaded. Default: the template's.",
    )

    @field_validator("name")
    @classmethod
    def _reference(cls, value: str) -> str:
        if not re.fullmatch(IMAGE_REF, value):
            raise ValueError(f"{value!r} is not an image reference (e.g. regsandbox/smollm2:0.1.2)")
        return value

    @field_validator("health_path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"/[^\s?#]*", value):
            raise ValueError(f"{value!r} is not a path (e.g. /v1/models)")
        return value


class ModelSpec(_Spec):
    uri: str | None = Field(
        default=None,
        description=(
            "Any MLflow model URI (models:/name@alias, runs:/id/path) or a local MLflow model directory. "
            "Required unless the template serves an image named in model.image."
        ),
        min_length=1,
    )
    template: str = Field(default="mlflow-pyfunc", description="Sandbox template that serves the model.")
    image: ImageSpec | None = Field(
        default=None,
        description=(
            "For the custom-image template: the locally loaded image that serves the model over the "
            "template's protocol (for example the OpenAI chat API of vLLM or llama.cpp's server)."
        ),
    )

    @property
    def source(self) -> str:
        """What the spec names as the model: its URI, or the image that carries it."""
        return self.uri or (self.image.name if self.image else "")


class SyntheticData(_Spec):
    generator: Literal["sea-population"] = Field(
        default="sea-population", description="Synthetic population generator."
    )
    rows: int = Field(default=5000, ge=100, le=2_000_000, description="Number of synthetic cases.")
    seed: int = Field(default=7, ge=0, description="Random seed; the same seed gives the same data.")
    countries: dict[JurisdictionCode, float] = Field(
        default_factory=lambda: dict.fromkeys(("SG", "MY", "TH", "ID", "PH", "VN"), 1.0),
        description="Country code -> relative weight of its share of the cases.",
    )

    @field_validator("countries")
    @classmethod
    def _positive_weights(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("at least one country is needed")
        bad = [code for code, weight in value.items() if weight <= 0]
        if bad:
            raise ValueError(f"weights must be positive (got {', '.join(bad)})")
        return value


class ApprovedData(_Spec):
    path: Path = Field(description="CSV or Parquet file approved for use in the sandbox.")
    sha256: Sha256 = Field(description="SHA-256 of the file; the trial stops if it does not match.")
    approval_ref: str = Field(min_length=1, description="Reference of the approval (ethics board, DPA ...).")


class ReferenceData(_Spec):
    generator: Literal["reference-population"] = Field(
        default="reference-population",
        description="Generator of the population the candidate was developed on.",
    )
    rows: int = Field(default=20_000, ge=100, le=2_000_000, description="Size of the reference sample.")
    seed: int = Field(default=2024, ge=0, description="Seed of the reference sample.")


def _reference_kind(value: Any) -> str:
    # A dataset is recognised by its path; anything else is read as generator settings.
    dataset = isinstance(value, ApprovedData) or (isinstance(value, dict) and "path" in value)
    return "approved" if dataset else "generator"


Reference = Annotated[
    Annotated[ReferenceData, Tag("generator")] | Annotated[ApprovedData, Tag("approved")],
    Discriminator(_reference_kind),
]


class DataSpec(_Spec):
    source: Literal["synthetic", "approved", "packs"] = Field(
        description=(
            "Where the trial's data comes from: a synthetic population or an approved dataset (tabular "
            "models), or evaluation packs (chat models)."
        )
    )
    synthetic: SyntheticData | None = Field(
        default=None, description="Generator settings (source: synthetic)."
    )
    approved: ApprovedData | None = Field(default=None, description="Approved dataset (source: approved).")
    packs: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None,
        description=(
            "Evaluation packs (source: packs): built-in ids (medical-qa, safety-refusal, crisis-lines, "
            "counterfactual, pii-canary, prompt-injection) or folders holding a manifest.yaml and "
            "items.yaml (a path with a '/', relative to the spec file)."
        ),
    )
    languages: list[Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]] | None = Field(
        default=None,
        description="Keep only the pack cases in these languages (BCP 47, e.g. th, fil); default: all.",
    )
    label: str = Field(default="diabetes", min_length=1, description="Column holding the ground-truth label.")
    sensitive_attributes: list[str] = Field(
        default_factory=lambda: ["sex", "age_band", "ethnicity", "country"],
        description="Columns by which subgroup performance is measured.",
    )
    id_column: str | None = Field(
        default="case_id",
        min_length=1,
        description=(
            "Column holding each case's unique identifier; the platform links every prediction to its "
            "ground truth by it (carried as text in its own case_id column). null: the data has no "
            "identifier and the cases are numbered in file order (row-1, row-2 ...)."
        ),
    )
    expectations: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "Data contract the data must meet: a built-in suite (clinical-tabular, generic-tabular) or "
            "the path of a contract file in the same YAML format (.yaml or .yml, relative to the spec "
            "file). Default: clinical-tabular for synthetic data, generic-tabular for approved data."
        ),
    )
    reference: Reference | None = Field(
        default=None,
        description=(
            "Population the candidate was developed on; drift (PSI, KS) is measured against it on the "
            "model inputs both share. Generator settings {generator, rows, seed}, or an approved dataset "
            "{path, sha256, approval_ref} checked like the trial data (path relative to the spec file). "
            "Default: the reference-population generator for synthetic data, none for approved data. "
            "Without a reference (or null) drift is reported as not assessed, never compared with an "
            "unrelated population."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _defaults_by_source(cls, value: Any) -> Any:
        # Not field defaults: the spec as recorded (MLflow params, report) then states the contract and
        # reference that apply, and the JSON Schema claims no single default for both sources.
        if not isinstance(value, dict) or value.get("source") == "packs":
            return value  # packs carry their own graders: no tabular contract or reference applies
        synthetic = value.get("source") == "synthetic"
        filled = dict(value)
        if filled.get("expectations") is None:
            filled["expectations"] = CLINICAL_SUITE if synthetic else GENERIC_SUITE
        if "reference" not in filled and synthetic:
            filled["reference"] = {}
        return filled

    @field_validator("expectations")
    @classmethod
    def _suite_or_file(cls, value: str | None) -> str | None:
        if value is None or is_contract_file(value) or re.fullmatch(SUITE_NAME, value):
            return value
        raise ValueError("name a built-in suite (e.g. generic-tabular) or a .yaml/.yml contract file")

    @model_validator(mode="after")
    def _consistent(self) -> DataSpec:
        if self.source == "synthetic" and self.approved is not None:
            raise ValueError("source is synthetic but an 'approved' section is given")
        if self.source == "approved" and self.approved is None:
            raise ValueError("source is approved but the 'approved' section is missing")
        if self.source == "packs" and not self.packs:
            raise ValueError("source is packs but no evaluation pack is named in 'packs'")
        if self.source != "packs" and (self.packs is not None or self.languages is not None):
            raise ValueError(f"'packs' and 'languages' apply to source: packs, not {self.source}")
        if self.id_column is not None and self.id_column in {self.label, *self.sensitive_attributes}:
            raise ValueError(f"id_column {self.id_column!r} is also the label or a sensitive attribute")
        return self

    @property
    def synthetic_or_default(self) -> SyntheticData:
        return self.synthetic or SyntheticData()

    @property
    def contract(self) -> str:
        """The data contract that applies: a built-in suite name or a contract file path."""
        return self.expectations or (CLINICAL_SUITE if self.source == "synthetic" else GENERIC_SUITE)


class Resources(_Spec):
    cpus: float = Field(default=1.0, gt=0, le=16, description="CPU cores the sandbox may use.")
    memory_mb: int = Field(default=1024, ge=128, le=65536, description="Memory limit of the sandbox, in MiB.")
    timeout_s: int = Field(default=900, ge=30, le=86400, description="Wall-clock limit of the whole trial.")
    gpus: int = Field(
        default=0,
        ge=0,
        le=8,
        description="GPUs the model server needs; only backends that schedule GPUs (kubernetes) accept any.",
    )


class WorkloadSpec(_Spec):
    batch_size: int = Field(default=50, ge=1, le=10_000, description="Cases per evaluation request.")
    concurrency: int = Field(default=4, ge=1, le=64, description="Evaluation requests in flight at once.")
    min_group_size: int = Field(
        default=100,
        ge=1,
        description="Subgroups smaller than this are 'insufficient evidence', never a pass.",
    )
    developer_window_s: float = Field(
        default=0.0,
        ge=0,
        le=86400,
        description="Seconds the endpoint stays open for developer traffic after the evaluation workload.",
    )


class TrialSpec(_Spec):
    """A sandbox trial: one candidate model, one dataset, several jurisdictions' profiles."""

    name: Slug = Field(description="Short slug naming the trial, e.g. diabetes-risk-screening.")
    sponsor: Slug = Field(description="Slug of the sponsoring organisation.")
    intended_use: str = Field(
        min_length=10, description="Intended use statement, as the sponsor would label it."
    )
    risk_class: Literal["A", "B", "C", "D"] = Field(
        description="ASEAN AMDD risk class claimed by the sponsor."
    )
    model: ModelSpec = Field(description="The candidate model.")
    data: DataSpec = Field(description="The trial data and how it is assessed.")
    jurisdictions: list[JurisdictionCode] = Field(
        min_length=1, description="Jurisdictions whose policy profiles assess the trial."
    )
    resources: Resources = Field(default_factory=Resources, description="Sandbox resource limits.")
    workload: WorkloadSpec = Field(default_factory=WorkloadSpec, description="Evaluation workload settings.")

    @field_validator("jurisdictions")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("jurisdictions must not repeat")
        return value


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "<root>"


def problems_of(error: ValidationError) -> list[str]:
    """One line per problem, each starting with the dotted field path."""
    lines = []
    for item in error.errors():
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        elif item["type"] == "missing":
            message = "required field is missing"
        lines.append(f"{_field_path(item['loc'])}: {message}")
    return lines


def parse_spec(data: Any, source: str = "<spec>") -> TrialSpec:
    if not isinstance(data, dict):
        raise SpecError(source, ["<root>: a trial spec must be a mapping of fields"])
    try:
        return TrialSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(source, problems_of(exc)) from exc


def load_spec(path: str | Path) -> TrialSpec:
    """Read and validate a YAML trial spec; raise SpecError naming every bad field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(str(path), [f"<file>: cannot read ({exc.strerror})"]) from exc
    except UnicodeDecodeError as exc:
        raise SpecError(str(path), [f"<file>: not UTF-8 text (byte {exc.start})"]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "?"
        raise SpecError(str(path), [f"<yaml>: not valid YAML ({where})"]) from exc
    spec = _next_to_spec(parse_spec(data, str(path)), path.parent)
    try:
        load_contract(spec.data.contract)
    except DataError as exc:
        # Refused here, so `trial validate` names an unknown suite or a broken contract file.
        raise SpecError(str(path), [f"data.expectations: {exc}"]) from exc
    return spec


def _next_to_spec(spec: TrialSpec, base: Path) -> TrialSpec:
    """The spec with relative file paths (data, reference, contract) resolved next to the spec."""

    def beside(path: Path) -> Path:
        return (base / path.expanduser()).resolve()

    data = spec.data
    update: dict[str, Any] = {}
    if data.approved is not None:
        update["approved"] = data.approved.model_copy(update={"path": beside(data.approved.path)})
    if isinstance(data.reference, ApprovedData):
        update["reference"] = data.reference.model_copy(update={"path": beside(data.reference.path)})
    if is_contract_file(data.contract) and data.expectations is not None:
        update["expectations"] = str(beside(Path(data.contract)))
    if data.packs and any("/" in name for name in data.packs):
        update["packs"] = [str(beside(Path(n))) if "/" in n else n for n in data.packs]
    return spec.model_copy(update={"data": data.model_copy(update=update)}) if update else spec


def spec_json_schema() -> str:
    return json.dumps(TrialSpec.model_json_schema(), indent=2, sort_keys=True)
