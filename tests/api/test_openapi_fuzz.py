"""Schemathesis over the app's own OpenAPI document: whatever a client sends, no 5xx.

Requests carry an administrator's token against the seeded platform, so they reach past sign-in
into every route; the examples in the document (the sample trial's id) reach seeded trials. Both
valid and invalid requests are generated: a malformed one must be refused, never crash a route.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from orchestrator.api.routes import include_routes
from tests.api.conftest import Platform

# Per operation and backend: enough to reach each route's refusals and successes, while the
# whole file stays under a minute.
EXAMPLES = 15


def operations() -> list[str]:
    # Only the list of routes is needed to collect the tests, so no platform is built for it.
    app = FastAPI()
    include_routes(app)
    return [f"{method.upper()} {path}" for path, ops in app.openapi()["paths"].items() for method in ops]


@pytest.fixture(scope="module")
def api_schema(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis"))  # not .hypothesis/ in the checkout
    yield schemathesis.openapi.from_asgi("/openapi.json", platform.client.app)
    set_hypothesis_home_dir(None)


@pytest.mark.parametrize("label", operations())
def test_no_server_error(api_schema: Any, platform: Platform, label: str) -> None:
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None, f"{label} is not in the served OpenAPI document"
    headers = platform.headers("admin")
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
    )

    @given(case=cases)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same requests on every run, so a failure reproduces
        suppress_health_check=list(HealthCheck),
    )
    def requests(case: Any) -> None:
        response = case.call(headers=headers)
        case.validate_response(response, checks=[not_a_server_error])

    requests()
