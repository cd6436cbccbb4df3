"""The SmolLM2 candidate image for the tests that serve a real language model.

Built by the same script as ``make chat-image`` (cached by content: instant when present; the
first build on a machine compiles llama-cpp-python, about 12 minutes on 2 cores).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SMOLLM2 = "regsandbox/smollm2:0.1.2"


def smollm2_image() -> str:
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-smollm2-image.sh"), SMOLLM2],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"building {SMOLLM2} failed:\n{done.stderr[-3000:]}"
    return SMOLLM2
