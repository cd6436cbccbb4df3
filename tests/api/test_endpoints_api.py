"""A trial's endpoint and its tokens: shown once, stored as a digest, only while the trial is open."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from orchestrator import security
from orchestrator.store import EndpointToken, Trial, session_scope
from tests.api.conftest import SPONSOR_A, Platform, example_spec


def test_a_token_is_shown_once_and_stored_as_its_digest(platform: Platform) -> None:
    ref = platform.refs["OA"]
    issued = platform.post("dev_a", f"/api/trials/{ref}/endpoint-tokens").json()
    assert issued["token"].startswith("rsep_")
    assert issued["url"] == f"http://testserver/trials/{ref}/"
    with session_scope(platform.settings) as db:
        rows = db.scalars(select(EndpointToken).where(EndpointToken.trial_id == ref)).all()
        assert security.digest(issued["token"]) in {r.digest for r in rows}
        assert all(issued["token"] not in (r.digest, r.trial_id) for r in rows)
    endpoint = platform.get("dev_a", f"/api/trials/{ref}/endpoint").json()
    assert endpoint == {"trial_id": ref, "url": issued["url"], "open": True, "open_until": None}
    assert issued["token"] not in platform.get("admin", "/api/audit").text


def test_no_token_once_the_trial_is_closed(platform: Platform) -> None:
    assert platform.post("dev_a", f"/api/trials/{platform.refs['A']}/endpoint-tokens").status_code == 409
    closed = "acme-closed-4d4d4d4d"
    with session_scope(platform.settings) as db:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        db.add(
            Trial(
                trial_id=closed,
                name="acme-closed",
                sponsor=SPONSOR_A,
                jurisdictions=["SG"],
                spec=example_spec(),
                status="running",
                state="observing",
                open_until=past,
            )
        )
    assert platform.post("dev_a", f"/api/trials/{closed}/endpoint-tokens").status_code == 409
    assert platform.get("dev_a", f"/api/trials/{closed}/endpoint").json()["open"] is False


def test_the_endpoint_is_the_sponsors(platform: Platform) -> None:
    assert platform.get("reg_sg", f"/api/trials/{platform.refs['OA']}/endpoint").status_code == 403
    assert platform.get("dev_b", f"/api/trials/{platform.refs['OA']}/endpoint").status_code == 404
    assert platform.get("admin", f"/api/trials/{platform.refs['OA']}/endpoint").status_code == 200


def test_a_run_started_in_the_prefect_ui_is_open_by_its_state(platform: Platform) -> None:
    # Its row was created by the run's own first transition, never marked running by the API.
    with session_scope(platform.settings) as db:
        db.add(
            Trial(
                trial_id="acme-from-ui-5e5e5e5e",
                name="acme-from-ui",
                sponsor=SPONSOR_A,
                jurisdictions=["SG"],
                spec=example_spec(),
                state="deployed",
            )
        )
    assert platform.post("dev_a", "/api/trials/acme-from-ui-5e5e5e5e/endpoint-tokens").status_code == 201
