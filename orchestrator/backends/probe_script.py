"""Isolation probes, run INSIDE a freshly provisioned sandbox before any model or data enters it.

Standard library only: this file's source is executed by the sandbox's own ``python3``.
Arguments: one JSON object with ``hosts`` (host addresses to try), ``canary_port`` (a TCP
port the platform listens on, on every host address), ``outside`` (addresses standing for
the internet), the limits that must be in force (``memory_bytes``, ``pids``, ``cpus``) and
``skip``, the probes the backend does not claim: those are not run at all, because on a
backend without a container they would write to, or send packets from, the real host.
Prints one JSON list of ``{"probe", "passed", "detail"}``.
"""

import errno
import json
import os
import socket
import subprocess
import sys

# cgroup v1 writes "no limit" as a page-rounded 2**63 - 1; nothing real is that large.
UNLIMITED = 2**60


def connect(host, port, timeout=2.0):
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((host, port))
        return "connected"
    except OSError as exc:
        return type(exc).__name__
    finally:
        sock.close()


def dns_answers(name, timeout=0.5):
    """Ask each resolver of /etc/resolv.conf for ``name`` once (glibc would retry for ~10 s).

    Returns the number of answer records from the first resolver that gave any. Half a second
    is plenty: the resolver is Docker's, inside the sandbox's own namespace, and answers names
    it can resolve in milliseconds; silence means it could not reach any upstream.
    """
    resolvers = []
    for line in (read("/etc/resolv.conf") or "").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            resolvers.append(parts[1])
    question = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
    query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + question + b"\x00\x01\x00\x01"
    for resolver in resolvers:
        sock = socket.socket(socket.AF_INET6 if ":" in resolver else socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(timeout)
        try:
            sock.sendto(query, (resolver, 53))
            reply = sock.recv(4096)
        except OSError:
            continue
        finally:
            sock.close()
        rcode, answers = reply[3] & 0x0F, int.from_bytes(reply[6:8], "big")
        if rcode == 0 and answers:
            return answers
    return 0


def default_gateway():
    try:
        with open("/proc/net/route") as handle:
            for line in handle.readlines()[1:]:
                fields = line.split()
                if fields[1] == "00000000":
                    return socket.inet_ntoa(bytes.fromhex(fields[2])[::-1])
    except OSError:
        pass
    return None


def read(path):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


def cgroup_limits():
    """(memory bytes, pids, cpus) from cgroup v2, else v1; None where not found."""
    memory = read("/sys/fs/cgroup/memory.max") or read("/sys/fs/cgroup/memory/memory.limit_in_bytes")
    pids = read("/sys/fs/cgroup/pids.max") or read("/sys/fs/cgroup/pids/pids.max")
    cpus = None
    cpu_max = read("/sys/fs/cgroup/cpu.max")
    if cpu_max and cpu_max.split()[0] != "max":
        quota, period = cpu_max.split()
        cpus = int(quota) / int(period)
    else:
        quota = read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") or read(
            "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us"
        )
        period = read("/sys/fs/cgroup/cpu/cpu.cfs_period_us") or read(
            "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us"
        )
        if quota and period and int(quota) > 0:
            cpus = int(quota) / int(period)
    as_int = lambda v: int(v) if v and v.isdigit() and int(v) < UNLIMITED else None  # noqa: E731
    return as_int(memory), as_int(pids), cpus


def rlimit_limits():
    """(memory bytes, pids) from this process's own hard rlimits; None where unlimited.

    The hard limit, not the soft one: a process may raise its soft limit up to the hard one,
    so only the hard limit holds against what runs here.
    """
    try:
        import resource
    except ImportError:
        return None, None

    def hard(which):
        limit = resource.getrlimit(which)[1]
        return None if limit == resource.RLIM_INFINITY or limit >= UNLIMITED else limit

    memory = tighter(hard(resource.RLIMIT_AS), hard(resource.RLIMIT_DATA))
    # The kernel does not enforce RLIMIT_NPROC on root.
    pids = hard(resource.RLIMIT_NPROC) if os.geteuid() != 0 else None
    return memory, pids


def tighter(*limits):
    found = [v for v in limits if v is not None]
    return min(found) if found else None


def main():
    args = json.loads(sys.argv[1])
    skip = set(args.get("skip", []))
    results = []

    def record(probe, passed, detail):
        if probe in skip:  # a probe the backend does not claim is "not provided", never "passed"
            return
        results.append({"probe": probe, "passed": bool(passed), "detail": str(detail)[:300]})

    # Network probes only where the backend claims network isolation: elsewhere they would send
    # real packets from the host.
    if "no-egress" not in skip:
        outside = {f"{h}:{p}": connect(h, p) for h, p in args.get("outside", [])}
        record("no-egress", outside and all(v != "connected" for v in outside.values()), outside)
    if "no-dns" not in skip:
        answered = dns_answers(args.get("dns_name", "deb.debian.org"))
        record(
            "no-dns",
            not answered,
            f"answers: {answered}" if answered else "no resolver answered with an address",
        )
    if "no-host-access" not in skip:
        hosts = set(args.get("hosts", []))
        gateway = default_gateway()
        if gateway:
            hosts.add(gateway)
        attempts = {f"{h}:{args['canary_port']}": connect(h, args["canary_port"]) for h in sorted(hosts)}
        record("no-host-access", attempts and all(v != "connected" for v in attempts.values()), attempts)

    if "read-only-root" not in skip:
        # A refused write alone proves little (a non-root user is refused anyway): the root mount
        # itself must be read-only, and writes must fail with EROFS.
        written = {}
        for path in ("/probe-root", "/etc/probe", "/usr/probe"):
            try:
                with open(path, "w") as handle:
                    handle.write("x")
                written[path] = "written"
            except OSError as exc:
                written[path] = "EROFS" if exc.errno == errno.EROFS else str(exc.strerror)
        root_options = ""
        for line in (read("/proc/self/mountinfo") or "").splitlines():
            fields = line.split()
            if len(fields) > 5 and fields[4] == "/":
                root_options = fields[5]
        written["/ mount"] = root_options
        refused = all(v == "EROFS" for k, v in written.items() if k != "/ mount")
        read_only = "ro" in root_options.split(",") and refused
        record("read-only-root", read_only, written)
    if "noexec-tmp" not in skip:
        script = "/tmp/probe-exec.sh"
        try:
            with open(script, "w") as handle:
                handle.write("#!/bin/sh\nexit 0\n")
            os.chmod(script, 0o755)
            subprocess.run([script], check=True)
            record("noexec-tmp", False, "a file written to /tmp could be executed")
        except OSError as exc:
            record("noexec-tmp", True, exc.strerror)
        except subprocess.CalledProcessError as exc:
            record("noexec-tmp", False, f"executed with status {exc.returncode}")
    record("non-root", os.getuid() != 0 and os.geteuid() != 0, f"uid={os.getuid()} euid={os.geteuid()}")
    status = read("/proc/self/status") or ""
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    cap_eff = int(fields.get("CapEff", "ffff").strip(), 16)
    record("no-capabilities", cap_eff == 0, f"CapEff={cap_eff:#x}")
    no_new_privs = fields.get("NoNewPrivs", "0").strip()
    record("no-new-privileges", no_new_privs == "1", f"NoNewPrivs={no_new_privs}")
    # Whichever limit is tighter holds: the cgroup's (a container) or the process's own rlimits
    # (a backend without one); both are enforced by the kernel.
    cg_memory, cg_pids, cpus = cgroup_limits()
    rl_memory, rl_pids = rlimit_limits()
    memory, pids = tighter(cg_memory, rl_memory), tighter(cg_pids, rl_pids)
    memory_source = "cgroup" if memory is not None and memory == cg_memory else "rlimit"
    pids_source = "cgroup" if pids is not None and pids == cg_pids else "rlimit"
    want = args.get("limits", {})
    record(
        "memory-limit",
        memory is not None and memory <= want.get("memory_bytes", 0),
        f"limit={memory} ({memory_source})" if memory is not None else "limit=None",
    )
    record(
        "pids-limit",
        pids is not None and pids <= want.get("pids", 0),
        f"limit={pids} ({pids_source})" if pids is not None else "limit=None",
    )
    record("cpu-limit", cpus is not None and cpus <= want.get("cpus", 0) + 1e-6, f"cpus={cpus}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
