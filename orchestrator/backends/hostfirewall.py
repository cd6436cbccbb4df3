"""Keep a sandbox network from reaching the host, and anything beyond its own bridge.

Docker's ``internal`` networks stop forwarding to other networks (no egress, no other
sandbox), but the host still owns an address on each bridge, so a container could open a
connection to any host service listening on a wildcard or public address. One INPUT rule
per sandbox bridge refuses every new connection from the bridge to the host, while replies
to connections the host opened (the gateway talking to the model) still pass. A second rule
in DOCKER-USER refuses whatever the sandbox tries to send off its bridge: the internal
network already drops it, but refusing makes an attempt fail at once instead of timing out,
and keeps egress closed should the network ever lose its internal flag.

Rules carry a comment with the trial id so teardown and the orphan sweep find them.
"""

from __future__ import annotations

import shutil
import subprocess

from orchestrator.errors import BackendError

COMMENT_PREFIX = "regsandbox:"
CHAINS = ("INPUT", "DOCKER-USER")


def _iptables() -> str:
    binary = shutil.which("iptables")
    if binary is None:
        raise BackendError("iptables is not installed; the host firewall for sandboxes cannot be applied")
    return binary


def _rules(bridge: str, trial_id: str) -> list[list[str]]:
    comment = ["-m", "comment", "--comment", f"{COMMENT_PREFIX}{trial_id}"]
    reject = ["-j", "REJECT", "--reject-with", "icmp-admin-prohibited"]
    return [
        [
            "INPUT",
            "-i",
            bridge,
            "-m",
            "conntrack",
            "!",
            "--ctstate",
            "ESTABLISHED,RELATED",
            *comment,
            *reject,
        ],
        ["DOCKER-USER", "-i", bridge, "!", "-o", bridge, *comment, *reject],
    ]


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_iptables(), "-w", "5", *args], capture_output=True, text=True, check=False)


def block_host_access(bridge: str, trial_id: str) -> None:
    """Refuse new connections from ``bridge`` to the host and off the bridge; idempotent."""
    for rule in _rules(bridge, trial_id):
        if _run(["-C", *rule]).returncode == 0:
            continue
        proc = _run(["-I", *rule])
        if proc.returncode != 0:
            raise BackendError(
                f"[docker] trial {trial_id}: could not add firewall rule in {rule[0]}: {proc.stderr.strip()}"
            )


def _listed() -> list[list[str]]:
    rules = []
    for chain in CHAINS:
        proc = _run(["-S", chain])
        if proc.returncode == 0:
            rules += [line.replace('"', "").split() for line in proc.stdout.splitlines()]
    return [parts[1:] for parts in rules if parts[:1] == ["-A"]]


def rules_for(trial_id: str) -> list[list[str]]:
    """The rules (as ``iptables -S`` argument lists, chain first) that belong to ``trial_id``."""
    wanted = f"{COMMENT_PREFIX}{trial_id}"
    return [rule for rule in _listed() if wanted in rule]


def owned_trials() -> set[str]:
    return {p[len(COMMENT_PREFIX) :] for rule in _listed() for p in rule if p.startswith(COMMENT_PREFIX)}


def refused_counts(trial_id: str) -> dict[str, int]:
    """Packets the trial's rules refused so far: ``to_host`` (INPUT) and ``off_bridge`` (DOCKER-USER)."""
    wanted = f"{COMMENT_PREFIX}{trial_id}"
    counts = {"to_host": 0, "off_bridge": 0}
    for chain, key in (("INPUT", "to_host"), ("DOCKER-USER", "off_bridge")):
        proc = _run(["-v", "-S", chain])
        for line in proc.stdout.splitlines() if proc.returncode == 0 else []:
            parts = line.replace('"', "").split()
            if wanted in parts and "-c" in parts:
                counts[key] += int(parts[parts.index("-c") + 1])
    return counts


def unblock(trial_id: str) -> list[str]:
    removed = []
    for rule in rules_for(trial_id):
        if _run(["-D", *rule]).returncode == 0:
            removed.append(f"iptables {rule[0]} rule for {trial_id}")
    return removed


def available() -> bool:
    try:
        return _run(["-S", "INPUT"]).returncode == 0
    except BackendError:
        return False
