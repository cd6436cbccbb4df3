"""Isolation attestation: prove the sandbox's protections from the inside, before deployment.

The platform listens on a canary TCP port on every host address, runs the probe script
(``probe_script.py``) inside the provisioned sandbox, and checks both sides: the probes'
own verdicts and that the canary saw no connection. A backend declares which probes it
must pass; anything it does not claim is reported as not provided, never as passed.
"""

from __future__ import annotations

import socket
import subprocess
import threading
from pathlib import Path
from types import TracebackType

from pydantic import BaseModel, ConfigDict, Field

PROBE_SCRIPT = Path(__file__).with_name("probe_script.py")
ALL_PROBES = (
    "no-egress",
    "no-dns",
    "no-host-access",
    "read-only-root",
    "noexec-tmp",
    "non-root",
    "no-capabilities",
    "no-new-privileges",
    "memory-limit",
    "pids-limit",
    "cpu-limit",
    "canary-untouched",
)
# RFC 5737 documentation address: never routed on the internet, so a probe that does get out
# reaches nobody.
OUTSIDE_STAND_IN = ("198.51.100.1", 443)


class ProbeResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    probe: str
    passed: bool
    required: bool = Field(description="Whether the backend claims this protection.")
    detail: str = ""


class Attestation(BaseModel):
    """What was verified inside one sandbox, and whether it is enough to deploy into it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: str
    level: str
    probes: list[ProbeResult]

    @property
    def passed(self) -> bool:
        return all(p.passed for p in self.probes if p.required)

    @property
    def failures(self) -> list[ProbeResult]:
        return [p for p in self.probes if p.required and not p.passed]

    @property
    def verified_level(self) -> str:
        """The isolation level the probes actually showed (the claimed level only if all held)."""
        return self.level if self.passed else f"{self.level} (NOT verified)"


def host_addresses() -> list[str]:
    """Every IPv4 address of this host, loopback excluded (where a careless service listens)."""
    try:
        out = subprocess.run(
            ["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True
        ).stdout
        found = [line.split()[3].split("/")[0] for line in out.splitlines()]
    except (OSError, subprocess.CalledProcessError):
        found = [socket.gethostbyname(socket.gethostname())]
    return sorted({a for a in found if not a.startswith("127.")})


class Canary:
    """A TCP listener on all host addresses that counts who connects to it."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("0.0.0.0", 0))  # noqa: S104 - the canary must listen where a careless service would
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self.port = int(self._sock.getsockname()[1])
        self.connections: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="isolation-canary", daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self._sock.accept()
            except OSError:
                continue
            self.connections.append(f"{peer[0]}:{peer[1]}")
            conn.close()

    def self_test(self) -> bool:
        """The listener answers on a host address: so a refusal seen by a probe means isolation."""
        addresses = host_addresses() or ["127.0.0.1"]
        try:
            with socket.create_connection((addresses[0], self.port), timeout=2):
                pass
        except OSError:
            return False
        for _ in range(50):  # the accept loop records the control connection asynchronously
            if self.connections:
                break
            threading.Event().wait(0.02)
        self.connections.clear()
        return True

    def __enter__(self) -> Canary:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()
