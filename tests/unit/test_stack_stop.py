"""``regsandbox down``: the stack counts as stopped once its process has ended, collected or not."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from orchestrator.settings import Settings
from orchestrator.stack import stop_stack


def test_down_returns_once_the_stack_has_ended_even_before_its_parent_collects_it(tmp_path: Path) -> None:
    # What a test or a supervisor that started ``up`` sees: the process ends on SIGTERM and stays
    # a zombie until its parent waits for it, which it does only after ``down`` has returned.
    stack = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        settings = Settings(home=tmp_path)
        (tmp_path / "stack.json").write_text(json.dumps({"pid": stack.pid}), encoding="utf-8")
        started = time.monotonic()
        assert stop_stack(settings, timeout_s=10) == stack.pid
        assert time.monotonic() - started < 5
    finally:
        stack.kill()
        stack.wait()


def test_down_without_a_running_stack_says_so(tmp_path: Path) -> None:
    assert stop_stack(Settings(home=tmp_path)) is None
