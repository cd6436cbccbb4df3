"""Data packages: real folders from a checkout or an installed wheel, and from a zip archive."""

from __future__ import annotations

import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import package_data
from orchestrator.package_data import data_dir

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("package", ["policies", "schemas", "sandbox_templates", "examples"])
def test_a_checkout_reads_its_own_top_level_folders(package: str) -> None:
    assert data_dir(package).resolve() == ROOT / package


@pytest.fixture()
def zipped_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("zipped_data/__init__.py", "")
        zf.writestr("zipped_data/profile.yaml", "id: zipped\n")
        zf.writestr("zipped_data/tpl/Dockerfile", "FROM scratch\n")
        zf.writestr("zipped_data/__pycache__/stale.pyc", b"\0")
    monkeypatch.syspath_prepend(str(archive))
    package_data._extracted.cache_clear()
    yield "zipped_data"
    sys.modules.pop("zipped_data", None)
    package_data._extracted.cache_clear()


def test_a_zipped_package_is_extracted_once_to_a_real_folder(zipped_package: str) -> None:
    folder = data_dir(zipped_package)
    assert folder.is_dir() and not str(folder).endswith(".zip")
    assert (folder / "profile.yaml").read_text() == "id: zipped\n"
    assert (folder / "tpl" / "Dockerfile").read_text() == "FROM scratch\n"
    assert not (folder / "__pycache__").exists()
    assert data_dir(zipped_package) == folder
