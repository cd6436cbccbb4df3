"""Keep a sandbox network from reaching services of the host.

Docker's ``internal`` networks stop forwarding to other networks (no egress, no other
sandbox), but the host still owns an address on each bridge, so a container could open a
connection to any host service listening on a wildcard or public address. One INPUT rule
per sandbox bridge refuses every new connection from the bridge to the host, while
replies to connections the host opened (the gateway talking to the model) still pass.
Rules carry a comment with the trial id so teardown and the orphan sweep find them.
"""

from __future__ import annotations

import shutil
import subprocess

from orchestrator.errors import BackendError

COMMENT_PREFIX = "regsandbox:"


def _iptables() -> str:
    binary = shutil.which("iptables")
    if binary is None:
        raise BackendError("iptables is not installed; the host firewall for sandboxes cannot be applied")
    return binary


def _rule(bridge: str, trial_id: str) -> list[str]:
    return [
        "INPUT",
        "-i",
        bridge,
        "-m",
        "conntrack",
        "!",
        "--ctstate",
        "ESTABLISHED,RELATED",
        "-m",
        "comment",
        "--comment",
        f"{COMMENT_PREFIX}{trial_id}",
        "-j",
        "REJECT",
        "--reject-with",
        "icmp-admin-prohibited",
    ]


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_iptables(), "-w", "5", *args], capture_output=True, text=True, check=False)


def block_host_access(bridge: str, trial_id: str) -> None:
    """Refuse new connections from ``bridge`` to the host; idempotent."""
    if _run(["-C", *_rule(bridge, trial_id)]).returncode == 0:
        return
    proc = _run(["-I", *_rule(bridge, trial_id)])
    if proc.returncode != 0:
        raise BackendError(
            f"[docker] trial {trial_id}: could not add host firewall rule: {proc.stderr.strip()}"
        )


def rules_for(trial_id: str) -> list[list[str]]:
    """The INPUT rules (as iptables -S argument lists) that belong to ``trial_id``."""
    proc = _run(["-S", "INPUT"])
    if proc.returncode != 0:
        return []
    wanted = f"{COMMENT_PREFIX}{trial_id}"
    rules = []
    for line in proc.stdout.splitlines():
        parts = line.replace('"', "").split()
        if parts[:1] == ["-A"] and wanted in parts:
            rules.append(parts[1:])
    return rules


def owned_trials() -> set[str]:
    proc = _run(["-S", "INPUT"])
    trials = set()
    for line in proc.stdout.splitlines():
        for part in line.replace('"', "").split():
            if part.startswith(COMMENT_PREFIX):
                trials.add(part[len(COMMENT_PREFIX) :])
    return trials


def unblock(trial_id: str) -> list[str]:
    removed = []
    for rule in rules_for(trial_id):
        if _run(["-D", *rule]).returncode == 0:
            removed.append(f"iptables INPUT rule for {trial_id}")
    return removed


def available() -> bool:
    try:
        return _run(["-S", "INPUT"]).returncode == 0
    except BackendError:
        return False
