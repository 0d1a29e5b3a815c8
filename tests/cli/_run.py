"""Run the ``eventbus`` command as a user would: a subprocess in a folder of the test's choosing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def eventbus(*args: str, cwd: Path, env: dict[str, str] | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    environment = {name: value for name, value in os.environ.items() if name != "EVENTBUS_CONFIG"}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "eventbus_cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=environment)
