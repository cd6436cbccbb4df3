"""People (created by administrators) and the audit trail of what they do."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import PASSWORD, Platform

NEW_REGULATOR = {
    "username": "reg-my",
    "password": "a long enough password",
    "role": "regulator",
    "jurisdiction": "MY",
}


def test_an_administrator_creates_people_who_then_sign_in(platform: Platform) -> None:
    created = platform.post("admin", "/api/users", json=NEW_REGULATOR)
    assert created.status_code == 201, created.text
    assert created.json()["jurisdiction"] == "MY" and "password" not in created.text
    assert platform.post("admin", "/api/users", json=NEW_REGULATOR).status_code == 409
    signed_in = platform.client.post(
        "/api/auth/token", json={"username": "reg-my", "password": "a long enough password"}
    )
    token = signed_in.json()["token"]
    me = platform.client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert (me["role"], me["jurisdiction"]) == ("regulator", "MY")
    assert "reg-my" in {u["username"] for u in platform.get("admin", "/api/users").json()}


@pytest.mark.parametrize(
    "changes",
    [
        {"role": "regulator", "jurisdiction": None},
        {"role": "developer", "jurisdiction": None},
        {"role": "admin"},
        {"role": "developer", "sponsor": "acme-health"},
        {"password": "short"},
        {"username": "Bad Name"},
        {"role": "superuser"},
    ],
)
def test_a_person_needs_the_affiliation_of_its_role(platform: Platform, changes: dict[str, Any]) -> None:
    body = {**NEW_REGULATOR, "username": "someone", **changes}
    assert platform.post("admin", "/api/users", json=body).status_code == 422


def test_sign_ins_tokens_reads_decisions_and_admin_actions_are_audited(platform: Platform) -> None:
    platform.client.post("/api/auth/token", json={"username": "dev_a", "password": PASSWORD})
    platform.client.post("/api/auth/token", json={"username": "dev_a", "password": "wrong password"})
    platform.get("reg_sg", f"/api/trials/{platform.refs['A']}/report/json")
    platform.post("dev_a", f"/api/trials/{platform.refs['OA']}/endpoint-tokens")
    platform.post("reg_sg", f"/api/trials/{platform.refs['A']}/decisions", json={"decision": "approve"})
    platform.get("dev_a", "/api/users")  # refused: recorded apart from the rolled-back request
    events = platform.get("admin", "/api/audit", params={"limit": 500}).json()["events"]
    seen = {(e["actor"], e["action"]) for e in events}
    assert {
        ("test-setup", "user_created"),
        ("dev_a", "api_token_issued"),
        ("dev_a", "sign_in"),
        ("dev_a", "sign_in_failed"),
        ("reg_sg", "report_read"),
        ("dev_a", "endpoint_token_issued"),
        ("reg_sg", "decision_recorded"),
        ("dev_a", "access_denied"),
    } <= seen
    assert platform.get("admin", "/api/audit/verify").json()["intact"] is True


def test_the_audit_log_reads_newest_first_page_by_page(platform: Platform) -> None:
    first = platform.get("admin", "/api/audit", params={"limit": 3}).json()
    second = platform.get("admin", "/api/audit", params={"limit": 3, "before": first["next_before"]}).json()
    seqs = [e["seq"] for e in first["events"] + second["events"]]
    # Consecutive, newest first, although each read appends an event of its own.
    assert seqs == list(range(seqs[0], seqs[0] - 6, -1))
    assert first["total"] >= 6
    last = platform.get("admin", "/api/audit", params={"before": 3}).json()
    assert [e["seq"] for e in last["events"]] == [2, 1] and last["next_before"] is None
    assert platform.get("admin", "/api/audit", params={"limit": 0}).status_code == 422
