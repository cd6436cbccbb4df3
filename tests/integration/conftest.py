from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.models import tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real MLflow sklearn model (two features), saved to disk."""
    return tiny_model(tmp_path_factory.mktemp("models") / "tiny")
