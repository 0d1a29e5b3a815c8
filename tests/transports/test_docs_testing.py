"""Everything shown runs: the handler test of docs/testing.md, run by a fresh pytest that finds the
``eventbus`` plugin through its entry point (no conftest of ours in the way)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run_example(tmp_path: Path, heading: str) -> None:
    text = (ROOT / "docs" / "testing.md").read_text(encoding="utf-8")
    section = text.split(heading, 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    (tmp_path / "test_example.py").write_text(code.group(1), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "asyncio_mode=auto", "test_example.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_the_handler_example_passes_with_the_installed_plugin(tmp_path: Path) -> None:
    _run_example(tmp_path, "## Unit-testing a handler")


def test_the_periodic_jobs_example_passes(tmp_path: Path) -> None:
    _run_example(tmp_path, "## Testing periodic jobs")
