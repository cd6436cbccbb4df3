"""Trial specs: strict loading, field-naming errors, and the command-line exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from orchestrator.errors import SpecError
from orchestrator.spec import TrialSpec, load_spec

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "trials" / "diabetes-risk.yaml"


def _write(tmp_path: Path, mutate) -> Path:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(EXAMPLE.read_text())
    mutate(data)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args], capture_output=True, text=True, check=False
    )


def test_example_spec_loads_and_is_frozen() -> None:
    spec = load_spec(EXAMPLE)
    assert spec.jurisdictions == ["SG", "MY", "TH", "ID", "PH", "VN"]
    assert spec.data.synthetic is not None and spec.data.synthetic.rows == 5000
    with pytest.raises(ValueError):
        spec.name = "other"  # type: ignore[misc]


def test_unknown_key_is_named_with_its_path(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: d["data"]["synthetic"].update(rowz=10))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.problems == ["data.synthetic.rowz: unknown field"]


def test_wrong_type_and_missing_field_each_get_a_line(tmp_path: Path) -> None:
    def mutate(d: dict) -> None:  # type: ignore[type-arg]
        d["resources"]["memory_mb"] = "lots"
        del d["sponsor"]

    with pytest.raises(SpecError) as info:
        load_spec(_write(tmp_path, mutate))
    problems = info.value.problems
    assert any(p.startswith("resources.memory_mb: ") for p in problems)
    assert "sponsor: required field is missing" in problems
    assert len(problems) == 2


def test_cross_field_rules(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="approved"):
        load_spec(_write(tmp_path, lambda d: d["data"].update(source="approved")))
    with pytest.raises(SpecError, match="jurisdictions"):
        load_spec(_write(tmp_path, lambda d: d.update(jurisdictions=["SG", "SG"])))


def test_not_yaml_and_not_a_mapping(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="<yaml>"):
        load_spec(bad)
    bad.write_text("- a list\n")
    with pytest.raises(SpecError, match="<root>"):
        load_spec(bad)


def test_every_field_is_described() -> None:
    schema = TrialSpec.model_json_schema()
    undocumented = []
    for name, model in [("TrialSpec", schema), *schema.get("$defs", {}).items()]:
        for field, info in model.get("properties", {}).items():
            if "description" not in info:
                undocumented.append(f"{name}.{field}")
    assert not undocumented


def test_cli_validate_exit_codes(tmp_path: Path) -> None:
    ok = _cli("trial", "validate", str(EXAMPLE))
    assert ok.returncode == 0, ok.stderr
    assert "valid trial spec" in ok.stdout

    unknown = _cli("trial", "validate", str(_write(tmp_path, lambda d: d["model"].update(flavour="x"))))
    assert unknown.returncode == 2
    assert "model.flavour: unknown field" in unknown.stderr

    typed = _cli("trial", "validate", str(_write(tmp_path, lambda d: d.update(jurisdictions="SG"))))
    assert typed.returncode == 2
    assert "jurisdictions:" in typed.stderr


def test_validate_checks_what_the_spec_names(tmp_path: Path) -> None:
    """What trial run would refuse at admission, validate refuses first, naming each field."""

    def mutate(data: dict) -> None:  # type: ignore[type-arg]
        data["jurisdictions"] = ["SG", "XX"]
        data["model"]["template"] = "no-such-template"
        data["model"]["uri"] = "models:/"
        data["data"] = {
            "source": "approved",
            "approved": {"path": "missing.csv", "sha256": "0" * 64, "approval_ref": "IRB-1"},
        }

    result = _cli("trial", "validate", str(_write(tmp_path, mutate)))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 4, lines
    assert any("jurisdictions[1]:" in line and "XX" in line for line in lines)
    assert any("model.template:" in line and "no-such-template" in line for line in lines)
    assert any("model.uri:" in line and "not a model URI" in line for line in lines)
    assert any("data.approved.path:" in line and "missing.csv" in line for line in lines)
    assert not any("Traceback" in line for line in lines)


def test_validate_accepts_a_local_model_directory_and_refuses_a_folder_without_mlmodel(
    tmp_path: Path,
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    spec = _write(tmp_path, lambda d: d["model"].update(uri=str(model)))
    refused = _cli("trial", "validate", str(spec))
    assert refused.returncode == 2 and "no MLmodel file" in refused.stderr
    (model / "MLmodel").write_text("flavors: {python_function: {}}\n")
    assert _cli("trial", "validate", str(spec)).returncode == 0
