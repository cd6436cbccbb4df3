"""Done-when 1: one threshold changed in a copy of a profile, stored trials re-assessed without the
model, and the flips listed equal a recomputation from the stored values done here by hand; the
reports are untouched and still verify; the re-assessments are new signed records citing them."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
import yaml

from orchestrator.policy import shipped_policies_dir
from orchestrator.reports.signing import load_public_key
from tests.standard.homes import TRIALS, cli, issue, stored

# (profile copied, criterion changed, the metric it reads, jurisdictions reading it)
CHANGES = {
    "sg": ("sg-worst-group-auroc-ethnicity", "fairness/worst_group_auroc/ethnicity", {"SG"}),
    "asean-core": ("perf-auroc", "perf/auroc", {"SG", "MY", "TH", "ID", "PH", "VN"}),
}


def _holds(comparator: str, observed: float, threshold: float) -> bool:
    return observed >= threshold if comparator == ">=" else observed <= threshold


@pytest.mark.parametrize("profile_id", sorted(CHANGES))
def test_changed_threshold_flips_exactly_what_the_stored_values_say(tmp_path: Path, profile_id: str) -> None:
    criterion_id, metric, readers = CHANGES[profile_id]
    home = tmp_path / "home"
    folders = {t: issue(home, t) for t in TRIALS}
    before = {t: (f / "report.json").read_bytes() for t, f in folders.items()}

    # The copy: one threshold moved to between the two trials' stored values, version bumped.
    doc = yaml.safe_load((shipped_policies_dir() / f"{profile_id}.yaml").read_text())
    criterion = next(c for c in doc["criteria"] if c["id"] == criterion_id)
    observed = {t: stored(t)["metrics"]["values"][metric] for t in TRIALS}
    old = float(criterion["threshold"])
    new = round(sum(observed.values()) / 2, 4)
    assert min(observed.values()) < new < max(observed.values())
    criterion["threshold"] = new
    doc["version"] = "9.9.9"
    proposed = tmp_path / f"{profile_id}.yaml"
    proposed.write_text(yaml.safe_dump(doc, sort_keys=False))

    done = cli(home, "policy", "reassess", str(proposed), "--json")
    result = json.loads(done.stdout)

    # The recomputation, from the stored JSON alone: a flip wherever old and new disagree.
    expected = set()
    for t in TRIALS:
        value = observed[t]
        if _holds(criterion["comparator"], value, old) != _holds(criterion["comparator"], value, new):
            for code in readers & set(stored(t)["trial"]["jurisdictions"]):
                expected.add((t, code, criterion_id, value))
    listed = {
        (t["trial_id"], j["jurisdiction"], f["criterion_id"], f["observed"])
        for t in result["trials"]
        for j in t["jurisdictions"]
        for f in j["flips"]
    }
    assert expected, "the moved threshold must separate the two trials"
    assert listed == expected
    for t in result["trials"]:
        assert {j["jurisdiction"] for j in t["jurisdictions"]} == readers & set(
            stored(t["trial_id"])["trial"]["jurisdictions"]
        )
        for j in t["jurisdictions"]:
            assert j["recorded"] == stored(t["trial_id"])["verdicts"][j["jurisdiction"]]
            # Under the unchanged profile the stored evidence gives back the verdict the report records.
            assert j["current"] == j["recorded"]
            for f in j["flips"]:
                assert (f["current"], f["proposed"]) in {("fail", "pass"), ("pass", "fail")}

    # The reports are untouched and verify; each re-assessment is a signed record citing its report.
    key = home / "keys" / "issuer-ed25519.pub.pem"
    for t, folder in folders.items():
        assert (folder / "report.json").read_bytes() == before[t]
        verified = cli(home, "report", "verify", str(folder / "report.json"), "--public-key", str(key))
        assert "verified" in verified.stdout
        records = sorted((home / "reassessments" / t).glob("*.json"))
        assert len(records) == 1
        payload = records[0].read_bytes()
        signature = base64.b64decode(records[0].with_name(records[0].name + ".sig").read_bytes())
        load_public_key(key).verify(signature, payload)  # raises when it does not verify
        cited = json.loads(payload)
        assert cited["schema"] == "regsandbox/reassessment/v1"
        assert cited["report_sha256"] == hashlib.sha256(before[t]).hexdigest()
        assert cited["proposed_profile"]["version"] == "9.9.9"
        assert "verified" in cli(home, "policy", "verify-reassessment", str(records[0])).stdout

    # A recorded re-assessment with one verdict changed no longer verifies.
    record = next((home / "reassessments" / TRIALS[0]).glob("*.json"))
    forged = tmp_path / record.name
    forged.write_bytes(record.read_bytes().replace(b'"proposed":"', b'"proposed":"x', 1))
    forged.with_name(forged.name + ".sig").write_bytes(record.with_name(record.name + ".sig").read_bytes())
    refused = cli(home, "policy", "verify-reassessment", str(forged), check=False)
    assert refused.returncode == 1 and "signature does not match" in refused.stderr
    audit = cli(home, "audit", "verify")
    assert audit.returncode == 0


def test_a_malformed_proposal_is_refused_naming_the_field(tmp_path: Path) -> None:
    home = tmp_path / "home"
    issue(home, TRIALS[0])
    doc = yaml.safe_load((shipped_policies_dir() / "sg.yaml").read_text())
    doc["criteria"][0]["threshold"] = "high"
    proposed = tmp_path / "sg.yaml"
    proposed.write_text(yaml.safe_dump(doc))
    done = cli(home, "policy", "reassess", str(proposed), check=False)
    assert done.returncode != 0
    assert "criteria.0.threshold" in done.stderr and "Traceback" not in done.stderr
