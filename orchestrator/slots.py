"""A host-wide limit on sandboxes running at once, shared by every process of the platform.

Each running sandbox holds an exclusive ``flock`` on one of ``max_sandboxes`` slot files
under the home directory. The kernel releases a lock when its holder exits, however it
exits, so a crashed orchestrator never leaks a slot, and no server is needed to coordinate
trials started from the CLI, the Prefect UI and tests alike.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path

from orchestrator.errors import SandboxTimeoutError


class Slot:
    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.index = int(path.stem.rsplit("-", 1)[1])
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _try(path: Path, trial_id: str) -> Slot | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{trial_id} pid={os.getpid()}\n".encode())
    return Slot(path, fd)


def acquire_slot(
    directory: Path,
    limit: int,
    trial_id: str,
    timeout_s: float,
    on_wait: Callable[[str], None] | None = None,
) -> Slot:
    """Take a free slot, waiting up to ``timeout_s`` for one; SandboxTimeoutError otherwise."""
    directory.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    warned = False
    while True:
        for index in range(limit):
            slot = _try(directory / f"slot-{index}", trial_id)
            if slot is not None:
                return slot
        if time.monotonic() > deadline:
            raise SandboxTimeoutError(
                f"trial {trial_id}: all {limit} sandbox slots stayed busy for {timeout_s:.0f}s "
                "(REGSANDBOX_MAX_SANDBOXES)"
            )
        if on_wait is not None and not warned:
            on_wait(f"waiting for a free sandbox slot ({limit} running)")
            warned = True
        time.sleep(0.25)
