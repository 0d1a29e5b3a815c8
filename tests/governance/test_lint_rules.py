"""Lint rules against their own data: tests/governance/lint/<RULE_ID>/{before,after}/contracts.

``before`` breaks exactly that rule; its findings (text format, exact line and column) are the
golden file ``expected.txt`` beside it. ``after`` is the same tree fixed, and lints clean.
Regenerate goldens after a deliberate change with ``EVENTBUS_UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from eventbus_governance import LINT_RULES, lint_contracts, render_findings

from .conftest import REPO_ROOT

DATA = Path(__file__).parent / "lint"
RULE_IDS = [rule.id for rule in LINT_RULES]
UPDATE = os.environ.get("EVENTBUS_UPDATE_GOLDEN") == "1"


def check_golden(path: Path, actual: str) -> None:
    if UPDATE:
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8"), f"{path} differs (EVENTBUS_UPDATE_GOLDEN=1 rewrites it)"


def test_every_rule_has_its_data_folder_and_nothing_else() -> None:
    assert sorted(path.name for path in DATA.iterdir() if path.is_dir()) == sorted(RULE_IDS)


def test_rule_ids_are_unique_screaming_snake_with_a_one_line_purpose() -> None:
    assert len(set(RULE_IDS)) == len(RULE_IDS)
    for rule in LINT_RULES:
        assert rule.id.replace("_", "").isalpha() and rule.id.isupper(), rule.id
        assert rule.purpose.endswith(".") and "\n" not in rule.purpose and len(rule.purpose) < 120, rule.id


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_before_breaks_only_its_rule_exactly_where_the_golden_says(rule_id: str) -> None:
    before = DATA / rule_id / "before"

    findings = lint_contracts(before / "contracts")

    assert findings, "the 'before' tree must break the rule"
    assert {finding.rule for finding in findings} == {rule_id}
    check_golden(DATA / rule_id / "expected.txt", render_findings(findings, "text", relative_to=before))


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_after_is_clean(rule_id: str) -> None:
    assert lint_contracts(DATA / rule_id / "after" / "contracts") == []


def test_the_repository_contracts_lint_clean() -> None:
    assert lint_contracts(REPO_ROOT / "contracts") == []


def test_json_and_github_formats_golden() -> None:
    before = DATA / "EXAMPLES_VALID" / "before"
    findings = lint_contracts(before / "contracts")

    as_json = render_findings(findings, "json", relative_to=before)
    check_golden(Path(__file__).parent / "golden" / "lint-examples-valid.json", as_json)
    check_golden(Path(__file__).parent / "golden" / "lint-examples-valid.github",
                 render_findings(findings, "github", relative_to=before))
    assert [(item["line"], item["column"]) for item in json.loads(as_json)] == [
        (finding.line, finding.column) for finding in findings
    ]


def test_line_and_column_point_at_the_offending_key() -> None:
    before = DATA / "ENUM_VALUES_SNAKE_CASE" / "before" / "contracts"
    finding = lint_contracts(before)[0]
    line = finding.path.read_text(encoding="utf-8").splitlines()[finding.line - 1]

    assert line[finding.column - 1:].startswith('"Paid"')
