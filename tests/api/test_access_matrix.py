"""Who may do what, as one table: each role against each resource, on its own and on another's trial.

A trial a caller may not see answers 404, exactly like a trial that does not exist; a trial it
sees but may not act on answers 403. Trials ``A``/``OA`` are sponsor A's and name SG; ``B``/``OB``
are sponsor B's and name TH (see conftest).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Platform

WHO = ("anonymous", "admin", "dev_a", "dev_b", "reg_sg", "reg_th")
DECISION = {"decision": "approve_with_conditions", "comment": "post-market study of BMI calibration"}

# resource, trial -> expected status for each of WHO
MATRIX: dict[tuple[str, str | None], tuple[int, ...]] = {
    ("detail", "A"): (401, 200, 200, 404, 200, 404),
    ("detail", "B"): (401, 200, 404, 200, 404, 200),
    ("report", "A"): (401, 200, 200, 404, 200, 404),
    ("report", "B"): (401, 200, 404, 200, 404, 200),
    ("metrics", "A"): (401, 200, 200, 404, 403, 404),
    ("metrics", "B"): (401, 200, 404, 200, 404, 403),
    ("decide", "A"): (401, 403, 403, 404, 201, 404),
    ("decide", "B"): (401, 403, 404, 403, 404, 201),
    ("endpoint-token", "OA"): (401, 403, 201, 404, 403, 404),
    ("endpoint-token", "OB"): (401, 403, 404, 201, 404, 403),
    ("list", None): (401, 200, 200, 200, 200, 200),
    ("audit", None): (401, 200, 403, 403, 403, 403),
    ("users", None): (401, 200, 403, 403, 403, 403),
}
LISTED = {
    "admin": {"A", "B", "OA", "OB"},
    "dev_a": {"A", "OA"},
    "dev_b": {"B", "OB"},
    "reg_sg": {"A", "OA"},
    "reg_th": {"B", "OB"},
}
CASES = [
    pytest.param(resource, trial, who, codes[i], id=f"{resource}-{trial or 'all'}-{who}")
    for (resource, trial), codes in MATRIX.items()
    for i, who in enumerate(WHO)
]


def call(platform: Platform, who: str, resource: str, ref: str | None) -> Any:
    paths = {
        "detail": ("get", f"/api/trials/{ref}", None),
        "report": ("get", f"/api/trials/{ref}/report/json", None),
        "metrics": ("get", f"/api/trials/{ref}/metrics", None),
        "decide": ("post", f"/api/trials/{ref}/decisions", DECISION),
        "endpoint-token": ("post", f"/api/trials/{ref}/endpoint-tokens", None),
        "list": ("get", "/api/trials", None),
        "audit": ("get", "/api/audit", None),
        "users": ("get", "/api/users", None),
    }
    method, path, body = paths[resource]
    if method == "get":
        return platform.get(who, path)
    return platform.post(who, path, json=body)


@pytest.mark.parametrize(("resource", "trial", "who", "expected"), CASES)
def test_access(platform: Platform, resource: str, trial: str | None, who: str, expected: int) -> None:
    ref = platform.refs[trial] if trial else None
    response = call(platform, who, resource, ref)
    assert response.status_code == expected, response.text
    if expected == 404:
        # Indistinguishable from a trial that does not exist.
        assert response.json() == {"error": f"no trial {ref!r}"}


@pytest.mark.parametrize("who", list(LISTED))
def test_list_holds_exactly_the_visible_trials(platform: Platform, who: str) -> None:
    listed = {t["trial_id"] for t in platform.get(who, "/api/trials").json()}
    seeded = {platform.refs[key] for key in ("A", "B", "OA", "OB")}
    assert listed & seeded == {platform.refs[key] for key in LISTED[who]}


@pytest.mark.parametrize(("who", "code"), [("reg_sg", "SG"), ("reg_th", "TH")])
def test_regulators_see_their_own_verdict_only(platform: Platform, who: str, code: str) -> None:
    for trial in platform.get(who, "/api/trials").json():
        assert set(trial["verdicts"]) <= {code}
    reported = "A" if code == "SG" else "B"
    detail = platform.get(who, f"/api/trials/{platform.refs[reported]}").json()
    assert set(detail["verdicts"]) == {code}
    # The report itself is the evidence every named regulator receives whole.
    report = platform.get(who, f"/api/trials/{platform.refs[reported]}/report/json").json()
    assert len(report["verdicts"]) == 2


def test_a_probe_of_a_hidden_trial_is_audited(platform: Platform) -> None:
    platform.get("dev_b", f"/api/trials/{platform.refs['A']}")
    events = platform.get("admin", "/api/audit", params={"action": "access_denied", "actor": "dev_b"}).json()
    assert any(e["target"] == f"trial:{platform.refs['A']}" for e in events["events"])
