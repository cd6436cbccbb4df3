"""Done-when 3: two platform instances with their own homes and keys. A report issued by one is
refused by the other before a trust exchange, imported after it and re-assessed there under local
profiles; the same report with one byte changed is refused, saying why."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from orchestrator.policy import shipped_policies_dir
from tests.standard.homes import TRIALS, cli, issue, stored


def test_a_trusted_neighbours_report_is_imported_and_reassessed(tmp_path: Path) -> None:
    th_home, sg_home = tmp_path / "th-sandbox", tmp_path / "sg-sandbox"
    report = issue(th_home, TRIALS[0])  # the TH sandbox issues a report with its own key
    sent = tmp_path / "sent"
    shutil.copytree(report, sent)
    cli(sg_home, "trust", "list")  # the SG sandbox starts with its own key only

    refused = cli(sg_home, "report", "import", str(sent), check=False)
    assert refused.returncode == 1
    assert "untrusted issuer" in refused.stderr and "Traceback" not in refused.stderr

    # The trust exchange: TH hands over its public key; SG adds it under a name.
    cli(th_home, "trust", "list")
    th_key = th_home / "keys" / "issuer-ed25519.pub.pem"
    added = cli(sg_home, "trust", "add", "th-sandbox", str(th_key))
    assert "trusted th-sandbox: sha256:" in added.stdout
    assert "th-sandbox" in cli(sg_home, "trust", "list").stdout

    tampered = tmp_path / "tampered"
    shutil.copytree(sent, tampered)
    data = bytearray((tampered / "report.json").read_bytes())
    at = data.index(b'"perf/auroc":') + len(b'"perf/auroc":0.')
    data[at] = ord("9") if data[at] != ord("9") else ord("8")
    (tampered / "report.json").write_bytes(bytes(data))
    altered = cli(sg_home, "report", "import", str(tampered), check=False)
    assert altered.returncode == 1
    assert "altered since 'th-sandbox' signed it" in altered.stderr

    imported = cli(sg_home, "report", "import", str(sent))
    assert f"imported {TRIALS[0]} from th-sandbox" in imported.stdout

    # Re-assessed in SG under a proposed SG profile, without the model: SG reads the TH trial too.
    doc = yaml.safe_load((shipped_policies_dir() / "sg.yaml").read_text())
    doc["version"] = "0.1.1"
    proposed = tmp_path / "sg.yaml"
    proposed.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = json.loads(cli(sg_home, "policy", "reassess", str(proposed), "--json").stdout)
    (trial,) = result["trials"]
    assert trial["trial_id"] == TRIALS[0] and trial["issuer"] == "th-sandbox"
    (sg,) = [j for j in trial["jurisdictions"] if j["jurisdiction"] == "SG"]
    assert sg["current"] == sg["proposed"] and sg["flips"] == []
    # Under SG's local profile the neighbour's stored evidence gives the verdict it recorded for SG.
    assert sg["current"] == sg["recorded"] == stored(TRIALS[0])["verdicts"]["SG"]

    # Withdrawing trust withdraws the imported report from re-assessment, with the reason.
    cli(sg_home, "trust", "remove", "th-sandbox")
    after = cli(sg_home, "policy", "reassess", str(proposed), "--trials", TRIALS[0], check=False)
    assert after.returncode == 1 and "untrusted issuer" in after.stderr
    assert cli(sg_home, "audit", "verify").returncode == 0
