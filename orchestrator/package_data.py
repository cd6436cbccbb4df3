"""Data that ships with the platform: policy profiles, the report schema, sandbox templates,
evaluation packs and the sample trials.

They live in the top-level folders ``policies/``, ``schemas/``, ``sandbox_templates/``,
``evaluation_packs/`` and ``examples/``, each a package, and are found through
:mod:`importlib.resources`: a checkout,
an editable install and an installed wheel read them the same way. Callers get real folders:
a template folder becomes a Docker build context, and profiles are globbed and read as files.
"""

from __future__ import annotations

import atexit
import functools
import importlib.resources
import shutil
import tempfile
from importlib.resources.abc import Traversable
from pathlib import Path

__all__ = ["data_dir"]


def data_dir(package: str) -> Path:
    """The folder of a data package, e.g. ``data_dir("policies")``."""
    root = importlib.resources.files(package)
    if isinstance(root, Path):
        return root
    return _extracted(package)


@functools.cache
def _extracted(package: str) -> Path:
    # A package imported from a zip archive has no folder on disk, and on Python 3.11
    # importlib.resources.as_file cannot materialise a directory: copy the files to a
    # temporary folder once per process, removed when the process exits.
    target = Path(tempfile.mkdtemp(prefix=f"regsandbox-{package}-"))
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    _copy_tree(importlib.resources.files(package), target)
    return target


def _copy_tree(node: Traversable, target: Path) -> None:
    for child in node.iterdir():
        if child.is_dir():
            if child.name == "__pycache__":
                continue
            (target / child.name).mkdir()
            _copy_tree(child, target / child.name)
        else:
            (target / child.name).write_bytes(child.read_bytes())
