"""The workflow demo's contracts (examples/workflows, a contracts repository of its own) pass their
gate and their committed bindings in all three languages are what the generators make now."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[2] / "examples" / "workflows"


def _eventbus(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "eventbus_cli", *args], cwd=DEMO, capture_output=True, text=True,
                          timeout=120)


def test_the_demo_contracts_pass_lint() -> None:
    result = _eventbus("contracts", "lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no lint findings" in result.stdout


@pytest.mark.parametrize("language", ["python", "typescript", "go"])
def test_the_demo_bindings_are_up_to_date(language: str) -> None:
    result = _eventbus("codegen", language, "--check")
    assert result.returncode == 0, result.stdout + result.stderr
