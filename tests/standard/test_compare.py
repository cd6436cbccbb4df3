"""Done-when 2: the six SEA profiles and a comparator compared; the common core is non-empty and
each of its criteria is required by every profile compared, each threshold with its provenance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import PolicyError
from orchestrator.policy import load_profile
from orchestrator.standard.compare import compare_profiles
from tests.standard.homes import cli

CODES = ["SG", "MY", "TH", "ID", "PH", "VN", "EU"]


def test_compare_prints_the_agreement_table_and_a_core_every_profile_requires(tmp_path: Path) -> None:
    home = tmp_path / "home"
    table = cli(home, "policy", "compare", *CODES).stdout
    header = next(line for line in table.splitlines() if line.startswith("criterion"))
    assert header.split()[1:-1] == CODES
    assert "common core:" in table and "provenance:" in table

    result = json.loads(cli(home, "policy", "compare", *CODES, "--json").stdout)
    core = [r for r in result["rows"] if r["agreement"] in ("agree", "differ")]
    assert core
    profiles = {code: load_profile(code) for code in CODES}
    for row in core:
        for code in CODES:
            # Checked against the profiles themselves, not the comparison's own bookkeeping.
            mine = [c for c in profiles[code].criteria if c.metric == row["metric"]]
            assert mine, f"{row['metric']} in the core but not required by {code}"
            assert {c.id for c in mine} == {r["criterion_id"] for r in row["required"][code]}
            assert all(r["provenance"] and r["reference"] for r in row["required"][code])
        thresholds = {json.dumps(r["threshold"]) for reqs in row["required"].values() for r in reqs}
        if row["agreement"] == "agree":
            assert (
                len(
                    {
                        json.dumps(
                            sorted(
                                map(
                                    json.dumps,
                                    [(r["comparator"], r["threshold"], r["severity"]) for r in reqs],
                                )
                            )
                        )
                        for reqs in row["required"].values()
                    }
                )
                == 1
            )
        elif row["spread"]:
            assert len(thresholds) > 1
    # PH tightens the error rate: the table says by how much.
    error_rate = next(r for r in result["rows"] if r["metric"] == "ops/error_rate")
    assert error_rate["agreement"] == "differ" and abs(error_rate["spread"] - 0.005) < 1e-12
    # Some criteria only some require (the EU comparator has no equalized-odds criterion).
    some = [r for r in result["rows"] if r["agreement"] == "some"]
    assert some and all(len(r["required"]) < len(CODES) for r in some)


def test_compare_refuses_an_unknown_profile_in_one_line(tmp_path: Path) -> None:
    done = cli(tmp_path / "home", "policy", "compare", "SG", "XX", check=False)
    assert done.returncode == 1
    assert "no policy profile 'XX'" in done.stderr and "Traceback" not in done.stderr


def test_compare_needs_two_distinct_profiles() -> None:
    sg = load_profile("SG")
    with pytest.raises(PolicyError, match="at least two profiles"):
        compare_profiles([sg])
    with pytest.raises(PolicyError, match="each profile may be named once"):
        compare_profiles([sg, sg])
