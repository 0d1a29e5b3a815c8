"""``bench/chord.py`` still runs: a tiny chord through both peers (eventbus and Celery), a table and JSON
with every callback having seen all results in order. It measures nothing: no timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.broker, pytest.mark.redis]

ROOT = Path(__file__).resolve().parents[2]


def test_the_chord_benchmark_runs_both_peers_and_prints_its_table(tmp_path: Path) -> None:
    pytest.importorskip("celery", reason="the bench extra: pip install -e '.[dev,bench]'")
    out = tmp_path / "chord.json"
    done = subprocess.run(
        [sys.executable, "bench/chord.py", "--count", "20", "--warmup", "5", "--rounds", "1", "--timeout", "60",
         "--json-out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "to callback s" in done.stdout and "ratio" in done.stdout
    table = json.loads(out.read_text())
    assert set(table["per_round"]) == {"eventbus", "celery"}
    for rounds in table["per_round"].values():
        assert [(r["results"], r["ok"]) for r in rounds] == [(20, True)]
