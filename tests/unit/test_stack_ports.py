"""`regsandbox up` refuses a port another program holds, at once, before starting any server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


def test_up_refuses_a_taken_port_and_names_it(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "orchestrator.cli", "up", "--api-port", str(taken), "--prefect-port", "0"],
            env={**os.environ, "REGSANDBOX_HOME": str(tmp_path / "home")},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1, done.stderr
    assert f"{taken} (--api-port)" in done.stderr and "already in use" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "home" / "logs" / "platform.log").exists()  # nothing was started
