"""The verdict matrix: before/after pairs (tests/governance/breaking/<RULE_ID>/<case>/) under every mode.

Each pair is committed to a throw-away git repository and checked the way CI checks it
(``check_breaking(contracts, "HEAD")``); ``expected.json`` lists the changes (rule id and JSON
path) and the verdict under each compatibility mode, written by hand from the rules in
docs/governance.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eventbus_governance import BREAKING_RULES, check_breaking

CASES = Path(__file__).parent / "breaking"
CASE_DIRS = sorted(path.parent for path in CASES.glob("*/*/expected.json"))
MATRIX = [
    (case, mode)
    for case in CASE_DIRS
    for mode in json.loads((case / "expected.json").read_text())["verdicts"]
]


def test_the_matrix_is_big_enough() -> None:
    assert len(CASE_DIRS) >= 40
    assert len(MATRIX) >= 160


def test_every_rule_has_its_own_cases() -> None:
    folders = {path.name for path in CASES.iterdir() if path.is_dir()}
    assert {rule.id for rule in BREAKING_RULES} <= folders
    assert folders - {rule.id for rule in BREAKING_RULES} == {"NO_CHANGE"}


@pytest.mark.parametrize(("case", "mode"), MATRIX, ids=[f"{c.parent.name}/{c.name}-{m}" for c, m in MATRIX])
def test_verdict(case: Path, mode: str, make_repo) -> None:
    expected = json.loads((case / "expected.json").read_text())
    contracts = make_repo(case / "before", case / "after", mode=mode)

    findings = check_breaking(contracts, "HEAD")

    assert sorted((f.rule, f.details["change_path"]) for f in findings) == sorted(
        (change["rule"], change["path"]) for change in expected["changes"]
    )
    verdict = "breaking" if any(f.is_error for f in findings) else "ok"
    assert verdict == expected["verdicts"][mode], [f.message for f in findings]
    named = {name for f in findings if f.is_error for name in f.details["consumers"]}
    assert sorted(named) == (sorted(expected.get("consumers", [])) if verdict == "breaking" else [])
