"""Everything shown runs: the Python examples, checked against their expected output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.broker
def test_quickstart_publishes_and_handles_one_event() -> None:
    result = subprocess.run(
        [sys.executable, "examples/python/quickstart.py"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("published ") and lines[0].endswith("(confirmed by the broker)")
    event_id = lines[0].split()[1]
    assert any(
        line.startswith(f"chat.conversation.ended.v1 {event_id} from /services/quickstart: ['u_ada', 'u_grace']")
        for line in lines[1:]
    ), result.stdout
