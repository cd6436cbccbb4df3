"""Probes refused before any route runs are still audited: path traversal and oversized bodies.

A download path that climbs out of the report folder is refused by routing or validation, and
an oversized body by the body limit, before a user is known; each leaves an audit event naming
the caller's address and what was asked for.
"""

from __future__ import annotations

import pytest

from orchestrator.api.limits import VERIFY_LIMIT
from tests.api.conftest import Platform


def _events(platform: Platform, action: str) -> list[dict]:  # type: ignore[type-arg]
    events = platform.get("admin", "/api/audit?limit=200").json()["events"]
    return [e for e in events if e["action"] == action]


@pytest.mark.parametrize(
    "tail",
    [
        "report/..%2F..%2Fkeys%2Fissuer-ed25519.pem",
        "report/%2e%2e%2f%2e%2e%2fkeys%2fissuer-ed25519.pem",
        "report/..%5C..%5Ckeys",
    ],
)
def test_a_download_path_out_of_the_report_folder_is_refused_and_audited(
    platform: Platform, tail: str
) -> None:
    before = len(_events(platform, "path_refused"))
    response = platform.get("admin", f"/api/trials/{platform.refs['A']}/{tail}")
    assert response.status_code in (404, 422)
    assert b"PRIVATE KEY" not in response.content
    found = _events(platform, "path_refused")
    assert len(found) == before + 1
    assert found[0]["actor"].startswith("address:") and "/report/" in found[0]["target"]


def test_an_oversized_upload_is_refused_and_audited(platform: Platform) -> None:
    before = len(_events(platform, "upload_refused"))
    files = {"report": ("report.json", b" " * (VERIFY_LIMIT + 1), "application/json")}
    assert platform.post("admin", "/api/reports/verify", files=files).status_code == 413
    found = _events(platform, "upload_refused")
    assert len(found) == before + 1
    assert found[0]["target"] == "/api/reports/verify" and found[0]["detail"]["limit"] == VERIFY_LIMIT


def test_an_ordinary_unknown_path_is_not_taken_for_a_probe(platform: Platform) -> None:
    before = len(_events(platform, "path_refused"))
    assert platform.get("admin", "/api/no-such-thing").status_code == 404
    assert len(_events(platform, "path_refused")) == before
