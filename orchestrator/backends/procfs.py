"""Reading and ending a process sandbox through /proc: its members, limits and listening sockets.

Linux only. A sandbox of the process backend is a session and process group led by the model
server; everything here identifies its processes by that id and by the leader's start time, so
a recycled pid is never mistaken for the sandbox.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

GRACE_S, KILL_S = 2.0, 5.0  # teardown: SIGTERM, then SIGKILL until nothing is left


@dataclass(frozen=True)
class Proc:
    pid: int
    comm: str
    state: str
    ppid: int
    pgrp: int
    session: int
    cpu_ticks: int
    start: int
    rss_pages: int


def read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def proc_stat(pid: int) -> Proc | None:
    raw = read_text(f"/proc/{pid}/stat")
    if ")" not in raw:
        return None
    # proc(5): after "pid (comm)" come state ppid pgrp session ... utime stime ... starttime vsize rss
    f = raw[raw.rindex(")") + 2 :].split()
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    return Proc(
        pid, comm, f[0], int(f[1]), int(f[2]), int(f[3]), int(f[11]) + int(f[12]), int(f[19]), int(f[21])
    )


def process_table() -> dict[int, Proc]:
    found = (proc_stat(int(entry)) for entry in os.listdir("/proc") if entry.isdigit())
    return {p.pid: p for p in found if p is not None}


def members(state: dict[str, Any], table: dict[int, Proc] | None = None) -> dict[int, Proc]:
    """Live processes of a sandbox: its session, its process group, and their descendants.

    Descendants count because a child may leave the group (``setsid``) while its parent is ours.
    """
    pgid = int(state.get("pgid") or 0)
    if pgid <= 0 or pgid in (os.getpgrp(), os.getsid(0)):
        return {}  # never deployed, or a state file naming the platform's own group
    table = process_table() if table is None else table
    leader = table.get(pgid)
    if leader is not None and leader.start != state.get("start"):
        return {}  # the id was reused, which the kernel allows only once our group is empty
    found = {pid for pid, p in table.items() if pgid in (p.pgrp, p.session)}
    children: dict[int, list[int]] = {}
    for p in table.values():
        children.setdefault(p.ppid, []).append(p.pid)
    todo = list(found)
    while todo:
        fresh = [c for c in children.get(todo.pop(), []) if c not in found]
        found.update(fresh)
        todo += fresh
    return {pid: table[pid] for pid in found if pid != os.getpid() and table[pid].state != "Z"}


def kill_all(state: dict[str, Any], grace_s: float = GRACE_S, kill_s: float = KILL_S) -> int:
    """SIGTERM every process of the sandbox, SIGKILL what is left after a grace; return the count."""
    seen: dict[int, int] = {}  # pid -> start time: a child orphaned after leaving the group stays ours
    termed: set[int] = set()
    started = time.monotonic()
    while time.monotonic() - started < grace_s + kill_s:
        table = process_table()
        live = members(state, table)
        live.update(
            {pid: table[pid] for pid, start in seen.items() if pid in table and table[pid].start == start}
        )
        live = {pid: p for pid, p in live.items() if p.state != "Z"}
        seen.update({pid: p.start for pid, p in live.items()})
        if not live:
            break
        grace_over = time.monotonic() - started > grace_s
        for pid in live:
            if grace_over or pid not in termed:
                termed.add(pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL if grace_over else signal.SIGTERM)
        time.sleep(0.05)
    return len(seen)


def rlimits(pid: int) -> dict[str, int | None]:
    """Hard limits of a live process by name ("Max data size"); None for unlimited."""
    found: dict[str, int | None] = {}
    for line in read_text(f"/proc/{pid}/limits").splitlines()[1:]:
        name, values = line[:26].strip(), line[26:].split()
        if len(values) >= 2:
            found[name] = None if values[1] == "unlimited" else int(values[1])
    return found


def listening(pids: list[int]) -> list[tuple[str, bool]]:
    """(address, is loopback) of every TCP socket the given processes listen on."""
    inodes = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:["):
                        inodes.add(link[8:-1])
    found = []
    for table in ("tcp", "tcp6"):
        for row in read_text(f"/proc/{pids[0]}/net/{table}").splitlines()[1:]:
            fields = row.split()
            if len(fields) > 9 and fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                address, port = fields[1].split(":")
                raw = bytes.fromhex(address)
                if sys.byteorder == "little":  # /proc prints each 32-bit word in host byte order
                    raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                ip = ipaddress.ip_address(raw)
                mapped = getattr(ip, "ipv4_mapped", None)
                loopback = ip.is_loopback or bool(mapped and mapped.is_loopback)
                found.append((f"{ip}:{int(port, 16)}", loopback))
    return found


def describe(p: Proc) -> str:
    """One "pid ppid sid uid args" line, the shape ``SandboxBackend.processes`` promises."""
    args = read_text(f"/proc/{p.pid}/cmdline").replace("\0", " ").strip() or f"[{p.comm}]"
    uid = next(
        (
            line.split()[1]
            for line in read_text(f"/proc/{p.pid}/status").splitlines()
            if line.startswith("Uid:")
        ),
        "?",
    )
    return f"{p.pid} {p.ppid} {p.session} {uid} {args}"
