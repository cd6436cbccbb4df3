"""The wheel on its own: an installed platform finds its policy profiles, sandbox templates,
report schema and sample trial inside the installed packages, with no checkout anywhere.

The wheel is built without build isolation and installed with ``--no-deps`` into a fresh
virtual environment. The dependencies come from the running interpreter's site-packages
through a ``.pth`` file there: Python runs ``.pth`` files only in site directories, not in
directories a ``.pth`` file adds, so the development install's editable finder stays inactive
and the wheel's own copy of every package is the one imported. Commands run from a temporary
directory with a temporary platform home.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
import yaml

from orchestrator.policy import list_profiles, load_profile
from orchestrator.settings import Settings
from orchestrator.templates import _IMAGE_FILES
from tests.integration.models import candidate_model

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
# Local state that is no part of the source; an in-tree build/ in particular keeps files
# that no longer exist and would put them in the wheel.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".regsandbox",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    "mlruns",
    "mlflow.db",
)


@dataclass(frozen=True)
class Installed:
    venv: Path
    site: Path
    python: Path
    regsandbox: Path
    wheel: Path
    workdir: Path
    env: dict[str, str]


def _run(cmd: list[str | Path], timeout: float = 120, **kwargs: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stderr[-5000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheel-install")
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCE)
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
        + ["--quiet", "-w", base / "dist", source]
    )
    (wheel,) = (base / "dist").glob("regsandbox-*.whl")

    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    # Installed before the dependencies become visible, so that pip sees no other regsandbox.
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel])
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(_run([python, "-c", purelib]).stdout.strip())
    here = sysconfig.get_paths()
    (site / "regsandbox_test_dependencies.pth").write_text(
        "\n".join(dict.fromkeys([here["purelib"], here["platlib"]])) + "\n", encoding="utf-8"
    )

    workdir = base / "work"
    workdir.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "PYTHONPATH" and not k.startswith(("PREFECT_", "MLFLOW_", "REGSANDBOX_"))
    }
    env["REGSANDBOX_HOME"] = str(base / "home")
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return Installed(venv, site, python, venv / "bin" / "regsandbox", wheel, workdir, env)


def _spec(installed: Installed, **model: object) -> Path:
    spec = yaml.safe_load((ROOT / "examples" / "trials" / "diabetes-risk.yaml").read_text(encoding="utf-8"))
    spec["data"]["synthetic"]["rows"] = 400
    spec["data"]["reference"] = {"rows": 1000}
    spec["model"].update(model)
    path = installed.workdir / "spec.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def test_the_wheel_holds_every_data_file(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    for template in (ROOT / "sandbox_templates").glob("*/template.yaml"):
        folder = template.parent.relative_to(ROOT).as_posix()
        # Every file of the template folder that goes into its image (custom-image has no Dockerfile).
        present = {name for name in _IMAGE_FILES if (template.parent / name).is_file()}
        assert {f"{folder}/{name}" for name in present} <= names
    assert {f"policies/{p.name}" for p in (ROOT / "policies").glob("*.yaml")} <= names
    assert {"schemas/exit-report-v1.json", "examples/trials/diabetes-risk.yaml"} <= names
    for pack in (ROOT / "evaluation_packs").glob("*/manifest.yaml"):
        folder = pack.parent.relative_to(ROOT).as_posix()
        assert {f"{folder}/manifest.yaml", f"{folder}/items.yaml"} <= names
    assert {"examples/health_assistant/assistant.py", "examples/health_assistant/knowledge.yaml"} <= names


def test_the_installed_copy_is_imported(installed: Installed) -> None:
    probe = """
import json, orchestrator
from orchestrator.policy import default_policies_dir
from orchestrator.reports.schema import SCHEMA_PATH
from orchestrator.stack import EXAMPLE_SPEC
from orchestrator.templates import TEMPLATES_DIR, load_template
print(json.dumps({
    "orchestrator": orchestrator.__file__,
    "policies": str(default_policies_dir()),
    "schema": str(SCHEMA_PATH),
    "example": str(EXAMPLE_SPEC),
    "templates": str(TEMPLATES_DIR),
    "template": str(load_template("mlflow-pyfunc").folder),
}))
"""
    found = json.loads(_run([installed.python, "-c", probe], cwd=installed.workdir, env=installed.env).stdout)
    venv = installed.venv.resolve()
    for what, path in found.items():
        assert Path(path).resolve().is_relative_to(venv), f"{what} comes from {path}, not the wheel"
        assert Path(path).exists(), f"{what}: {path} is missing"
    assert Path(found["schema"]).read_bytes() == (ROOT / "schemas" / "exit-report-v1.json").read_bytes()
    for name in _IMAGE_FILES:
        assert (Path(found["template"]) / name).is_file()


def test_policy_list(installed: Installed) -> None:
    listed = _run([installed.regsandbox, "policy", "list"], cwd=installed.workdir, env=installed.env).stdout
    for profile in list_profiles():
        assert profile.id in listed


def test_trial_validate(installed: Installed) -> None:
    spec = _spec(installed)
    out = _run([installed.regsandbox, "trial", "validate", spec], cwd=installed.workdir, env=installed.env)
    assert "valid trial spec 'diabetes-risk-screening'" in out.stdout


@dataclass(frozen=True)
class BaseImage:
    tag: str
    label: str  # key=value, inherited by every image built on it


@pytest.fixture()
def own_base_image(docker_client, tmp_path: Path) -> Iterator[BaseImage]:  # type: ignore[no-untyped-def]
    """A base image of this test's own, removed at the end with every image built on it.

    The template image's tag hashes the base image, so a new base makes the trial build the
    template image from the installed template folder instead of reusing one built from a
    checkout.
    """
    label = f"regsandbox.test=wheel-install-{uuid.uuid4().hex[:12]}"
    tag = f"regsandbox/base:{label.rpartition('=')[2]}"
    (tmp_path / "Dockerfile").write_text(f"FROM {Settings().base_image}\nLABEL {label}\n", encoding="utf-8")
    docker_client.images.build(path=str(tmp_path), tag=tag, rm=True, forcerm=True)
    try:
        yield BaseImage(tag, label)
    finally:
        built = docker_client.images.list(filters={"label": label})
        # Images built on the base first: the base cannot go while they exist.
        for image in sorted(built, key=lambda i: tag in i.tags):
            docker_client.images.remove(image.id, force=True)


@pytest.mark.docker
def test_trial_run(installed: Installed, docker_client, own_base_image: BaseImage) -> None:  # type: ignore[no-untyped-def]
    spec = _spec(installed, uri=str(candidate_model(installed.workdir / "model")))
    run = _run(
        [installed.regsandbox, "trial", "run", spec, "--json", "--backend", "docker"],
        cwd=installed.workdir,
        env={**installed.env, "REGSANDBOX_BASE_IMAGE": own_base_image.tag},
        timeout=600,
    )
    outcome = json.loads(run.stdout.strip().splitlines()[-1])
    assert outcome["status"] == "completed" and outcome["teardown_verified"] is True
    report = json.loads(Path(outcome["report"]["json"]).read_text(encoding="utf-8"))
    schema = json.loads((installed.site / "schemas" / "exit-report-v1.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(report)
    # The installed profiles are the checkout's, byte for byte.
    digests = {a["jurisdiction"]: a["profile_digest"] for a in report["assessments"]}
    assert digests == {code: load_profile(code).digest for code in ["SG", "MY", "TH", "ID", "PH", "VN"]}
    left = docker_client.containers.list(
        all=True, filters={"label": f"regsandbox.trial_id={outcome['trial_id']}"}
    )
    assert not left
    # The template image was built here, from the installed template folder.
    built = docker_client.images.list(filters={"label": own_base_image.label})
    assert any(t.startswith("regsandbox/mlflow-pyfunc:") for image in built for t in image.tags)
