"""The platform's endpoint for developers: ``/trials/{id}/...`` forwarded to that trial's model.

A real trial gateway (orchestrator.gateway.Gateway) in front of a real HTTP model server on
loopback, the platform app with a real SQLite store; the trial's row is set as the running trial
publishes it. Tokens open one trial only, only while it is open, within a rate limit. The platform
calls the model server in one hop and hands the exchange back to the trial's gateway, which
records it; a trial gateway that does not name its model server is forwarded through instead.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from orchestrator import security
from orchestrator.api import endpoint_pass
from orchestrator.api import gateway as platform_gateway
from orchestrator.api.app import create_app
from orchestrator.api.auth import create_user
from orchestrator.api.relay import relay
from orchestrator.gateway import Gateway, hash_token
from orchestrator.records import TrafficRecord
from orchestrator.settings import Settings
from orchestrator.spec import load_spec
from orchestrator.store import EndpointToken, audit, session_scope
from orchestrator.store.trials import publish
from tests.unit.test_gateway import upstream  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parents[2]
BODY = {"dataframe_split": {"columns": ["a"], "data": [[1.0], [2.0]]}}


@pytest.fixture(params=["platform"])
def platform(request: pytest.FixtureRequest, tmp_path: Path, upstream: str) -> Iterator[dict]:  # type: ignore[type-arg]  # noqa: F811
    settings = Settings(home=tmp_path / "home", endpoint_rate_per_s=1.0, endpoint_burst=3)
    app = create_app(settings)
    records: list[TrafficRecord] = []
    credential = security.platform_credential(settings.keys_dir, "trial-one-1234")
    trial_gateway = Gateway(
        "trial-one-1234", upstream, ["/invocations"], {hash_token(credential): request.param}, records.append
    )
    url = trial_gateway.start()
    spec = load_spec(ROOT / "examples" / "trials" / "diabetes-risk.yaml")
    publish(settings, "trial-one-1234", spec, state="observing", status="running", gateway_url=url)
    publish(settings, "trial-two-5678", spec, state="observing", status="running", gateway_url=url)
    with session_scope(settings) as db:
        user = create_user(db, "test", "dev", "pw-dev-123", "developer", sponsor="acme-health")
        token, digest = security.new_token("ep")
        db.add(EndpointToken(trial_id="trial-one-1234", digest=digest, user_id=user.id))
    platform_gateway.limiter._buckets.clear()
    endpoint_pass.forget()
    yield {"client": TestClient(app), "token": token, "records": records, "settings": settings, "spec": spec}
    trial_gateway.stop()


def test_a_token_opens_its_trial_and_the_trial_records_the_call(platform: dict) -> None:  # type: ignore[type-arg]
    client, token = platform["client"], platform["token"]
    reply = client.post(
        "/trials/trial-one-1234/invocations", json=BODY, headers={"Authorization": f"Bearer {token}"}
    )
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"predictions": [[0.3, 0.7], [0.3, 0.7]]}
    relay.flush()
    assert [r.origin for r in platform["records"]] == [
        "developer"
    ]  # recorded by the trial as developer traffic
    assert platform["records"][0].response == {"predictions": [[0.3, 0.7], [0.3, 0.7]]}
    with session_scope(platform["settings"]) as db:
        assert audit.verify(db).intact
        from sqlalchemy import select

        from orchestrator.store import AuditEvent

        actions = [e.action for e in db.scalars(select(AuditEvent))]
    assert "endpoint_first_call" in actions


def test_refused_on_another_trial_without_a_token_and_after_the_window(platform: dict) -> None:  # type: ignore[type-arg]
    client, token = platform["client"], platform["token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert client.post("/trials/trial-two-5678/invocations", json=BODY, headers=auth).status_code == 401
    assert client.post("/trials/trial-one-1234/invocations", json=BODY).status_code == 401
    assert (
        client.post(
            "/trials/trial-one-1234/invocations", json=BODY, headers={"Authorization": "Bearer rsep_x"}
        ).status_code
        == 401
    )
    assert client.post("/trials/trial-one-1234/invocations", json=BODY, headers=auth).status_code == 200
    publish(platform["settings"], "trial-one-1234", platform["spec"], state="observed", open_until=None)
    time.sleep(endpoint_pass.RECHECK_S + 0.1)  # a pass is re-checked at most this often
    closed = client.post("/trials/trial-one-1234/invocations", json=BODY, headers=auth)
    assert closed.status_code == 409 and "not open" in closed.json()["error"]
    relay.flush()
    assert len(platform["records"]) == 1  # only the call made while open reached the trial


def test_each_token_is_rate_limited(platform: dict) -> None:  # type: ignore[type-arg]
    client, auth = platform["client"], {"Authorization": f"Bearer {platform['token']}"}
    codes = [
        client.post("/trials/trial-one-1234/invocations", json=BODY, headers=auth).status_code
        for _ in range(5)
    ]
    assert codes[:3] == [200, 200, 200] and 429 in codes[3:], codes


def test_the_call_goes_in_one_hop_and_the_trial_records_it(platform: dict) -> None:  # type: ignore[type-arg]
    client, auth = platform["client"], {"Authorization": f"Bearer {platform['token']}"}
    before = relay.delivered
    for _ in range(2):
        assert client.post("/trials/trial-one-1234/invocations", json=BODY, headers=auth).status_code == 200
    assert client.post("/trials/trial-one-1234/admin", json=BODY, headers=auth).status_code == 404
    relay.flush()
    assert relay.delivered - before == 2, endpoint_pass._routes  # handed back by the platform
    assert [r.status for r in platform["records"]] == [200, 200]


@pytest.mark.parametrize("platform", ["developer"], indirect=True)
def test_a_gateway_that_names_no_model_server_is_forwarded_through(platform: dict) -> None:  # type: ignore[type-arg]
    client, auth = platform["client"], {"Authorization": f"Bearer {platform['token']}"}
    before = relay.delivered
    reply = client.post("/trials/trial-one-1234/invocations", json=BODY, headers=auth)
    assert reply.status_code == 200, reply.text
    assert client.post("/trials/trial-one-1234/admin", json=BODY, headers=auth).status_code == 404
    assert relay.delivered == before  # the trial's gateway recorded them as they passed
    assert [r.status for r in platform["records"]] == [200]
