"""The shared standard over the JSON API, on SQLite and on PostgreSQL: a proposal made, refused
where the rules say so, commented, endorsed and accepted; profiles compared; a neighbour's report
imported only after its key is trusted, and refused when altered."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from orchestrator.policy import load_profile, policies_in_force, shipped_policies_dir
from orchestrator.standard.trust import add_trusted
from tests.api.conftest import Platform
from tests.standard.homes import TRIALS, issue

METRIC = "fairness/auroc_gap/ethnicity"


def _document(threshold: float, version: str = "0.4.0") -> str:
    doc = yaml.safe_load((shipped_policies_dir() / "asean-core.yaml").read_text())
    next(c for c in doc["criteria"] if c["metric"] == METRIC)["threshold"] = threshold
    doc["version"] = version
    return yaml.safe_dump(doc, sort_keys=False)


def test_a_core_proposal_goes_from_proposed_to_accepted(platform: Platform) -> None:
    stored = {
        t: json.loads((platform.settings.reports_dir / t / "report.json").read_bytes())
        for t in platform.refs.values()
        if (platform.settings.reports_dir / t / "report.json").is_file()
    }
    observed = {t: r["metrics"]["values"][METRIC] for t, r in stored.items()}
    new = round(max(observed.values()) + 0.01, 4)  # loosened past every stored value: all now pass

    refused = platform.post("dev_a", "/api/proposals", json={"profile": "sg", "document": "x", "reason": "r"})
    assert refused.status_code == 403
    bad = platform.post(
        "reg_sg",
        "/api/proposals",
        json={"profile": "asean-core", "document": _document(new, "0.1.0"), "reason": ""},
    )
    assert bad.status_code == 422
    assert bad.json()["error"] == "invalid proposal" and bad.json()["problems"] == [
        "reason: say why the profile should change"
    ]
    old_version = platform.post(
        "reg_sg",
        "/api/proposals",
        json={"profile": "asean-core", "document": _document(new, "0.1.0"), "reason": "r"},
    )
    assert old_version.status_code == 422 and "must be newer than 0.3.0" in old_version.text

    made = platform.post(
        "reg_sg",
        "/api/proposals",
        json={
            "profile": "asean-core",
            "document": _document(new),
            "reason": "Gap of 0.05 fails every trial.",
        },
    )
    assert made.status_code == 201, made.text
    pid = made.json()["id"]
    proposal = platform.get("admin", f"/api/proposals/{pid}").json()  # an administrator reads it all
    # Every stored trial is re-assessed for each of its jurisdictions; the flips are exactly the
    # jurisdictions whose current outcome on the gap was a fail (every profile has it, so all flip).
    listed = {
        (t["trial_id"], j["jurisdiction"], f["observed"])
        for t in proposal["reassessment"]["trials"]
        for j in t["jurisdictions"]
        for f in j["flips"]
        if f["metric"] == METRIC
    }
    expected = {
        (t, code, observed[t])
        for t, r in stored.items()
        for a in r["assessments"]
        for code in [a["jurisdiction"]]
        for o in a["criteria"]
        if o["metric"] == METRIC and o["outcome"] == "fail"
    }
    assert expected and listed == expected

    # The proposer reads its own jurisdiction's rows on the trials it may see; the rest is counted.
    a_trial, b_trial = platform.refs["A"], platform.refs["B"]
    mine = made.json()["reassessment"]
    assert [(t["trial_id"], [j["jurisdiction"] for j in t["jurisdictions"]]) for t in mine["trials"]] == [
        (a_trial, ["SG"])
    ]
    hidden = [
        j
        for t in proposal["reassessment"]["trials"]
        for j in t["jurisdictions"]
        if (t["trial_id"], j["jurisdiction"]) != (a_trial, "SG")
    ]
    assert mine["others"] == {
        "trials": 1,
        "verdict_changes": sum(1 for j in hidden if j["current"] != j["proposed"]),
        "flips": sum(len(j["flips"]) for j in hidden),
    }
    assert b_trial not in json.dumps(mine)
    assert platform.post("reg_sg", f"/api/proposals/{pid}/endorsements").status_code == 409  # own proposal
    assert platform.post("reg_th", f"/api/proposals/{pid}/accept").status_code == 409  # not endorsed yet
    assert platform.post("reg_th", f"/api/proposals/{pid}/comments", json={"body": " "}).status_code == 422
    said = platform.post("reg_th", f"/api/proposals/{pid}/comments", json={"body": "Agreed for TH."})
    assert said.status_code == 201 and said.json()["comments"][0]["by"] == "reg_th"
    assert platform.post("reg_th", f"/api/proposals/{pid}/endorsements").status_code == 201
    assert platform.post("reg_th", f"/api/proposals/{pid}/endorsements").status_code == 409  # once
    accepted = platform.post("reg_sg", f"/api/proposals/{pid}/accept")
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    assert load_profile("asean-core", policies_in_force(platform.settings.home)).version == "0.4.0"
    assert platform.get("admin", "/api/audit/verify").json()["intact"] is True
    assert platform.get("dev_a", f"/api/proposals/{pid}").status_code == 403
    assert platform.get("reg_th", "/api/proposals/999999").status_code == 404


def test_profiles_compared_over_the_api(platform: Platform) -> None:
    found = platform.get("reg_th", "/api/profiles/compare", params={"codes": ["SG", "TH", "EU"]})
    assert found.status_code == 200
    core = [r for r in found.json()["rows"] if r["agreement"] != "some"]
    assert core and all(set(r["required"]) == {"SG", "TH", "EU"} for r in core)
    unknown = platform.get("reg_th", "/api/profiles/compare", params={"codes": ["SG", "XX"]})
    assert unknown.status_code == 422 and "no policy profile 'XX'" in unknown.json()["error"]
    assert platform.get("dev_a", "/api/profiles/compare", params={"codes": ["SG", "TH"]}).status_code == 403


def test_a_neighbours_report_is_imported_after_trust_and_refused_when_altered(
    platform: Platform, tmp_path: Path
) -> None:
    neighbour = tmp_path / "neighbour"
    folder = issue(neighbour, TRIALS[1])

    def send(source: Path) -> object:
        files = {
            "report": ("report.json", (source / "report.json").read_bytes()),
            "signature": ("report.json.sig", (source / "report.json.sig").read_bytes()),
            "attestation": ("report.intoto.jsonl", (source / "report.intoto.jsonl").read_bytes()),
        }
        return platform.post("reg_sg", "/api/reports/import", files=files)

    before = send(folder)
    assert before.status_code == 422 and "untrusted issuer" in before.json()["error"]
    name = f"neighbour-{platform.backend}"
    add_trusted(platform.settings, name, neighbour / "keys" / "issuer-ed25519.pub.pem")
    altered = tmp_path / "altered"
    shutil.copytree(folder, altered)
    data = (altered / "report.json").read_bytes()
    (altered / "report.json").write_bytes(data.replace(b'"status":"completed"', b'"status":"cancelled"', 1))
    refused = send(altered)
    assert refused.status_code == 422 and f"altered since '{name}' signed it" in refused.json()["error"]
    imported = send(folder)
    assert imported.status_code == 201, imported.text
    assert imported.json()["issuer"] == name and imported.json()["trial_id"] == TRIALS[1]
