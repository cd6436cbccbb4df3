"""Fixtures of the portal tests: one real report per session, one seeded platform per module."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from orchestrator.api.app import create_app
from orchestrator.settings import Settings
from tests.portal.seed import Written, seed, sign_in, write_sample


@pytest.fixture(scope="session")
def written(tmp_path_factory: pytest.TempPathFactory) -> Written:
    # The PDF takes seconds to lay out: written once, copied into every home.
    return write_sample(tmp_path_factory.mktemp("portal-report"), pdf=True)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, written: Written) -> tuple[Settings, str]:
    settings = Settings(home=tmp_path_factory.mktemp("portal-home"))
    return settings, seed(settings, written)


@pytest.fixture(scope="module")
def settings(platform: tuple[Settings, str]) -> Settings:
    return platform[0]


@pytest.fixture(scope="module")
def trial_id(platform: tuple[Settings, str]) -> str:
    return platform[1]


@pytest.fixture(scope="module")
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture()
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as anonymous:
        yield anonymous


class Browsers:
    """One signed-in browser per person and module (signing in hashes a password: slow on purpose)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.kept: dict[str, TestClient] = {}
        self.opened: list[TestClient] = []

    def __call__(self, username: str, fresh: bool = False) -> TestClient:
        if username in self.kept and not fresh:
            return self.kept[username]
        browser = TestClient(self.app)
        response = sign_in(browser, username)
        assert response.status_code == 303, response.text
        self.opened.append(browser)
        if not fresh:
            self.kept[username] = browser
        return browser


@pytest.fixture(scope="module")
def signed_in(app: FastAPI) -> Iterator[Callable[..., TestClient]]:
    """``signed_in(name)``: that person's browser; ``fresh=True`` for a session the test may end."""
    browsers = Browsers(app)
    yield browsers
    for browser in browsers.opened:
        browser.close()


def report_file(settings: Settings, trial_id: str, name: str) -> Path:
    return settings.reports_dir / trial_id / name
