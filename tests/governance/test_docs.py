"""docs/governance.md says what the code does: rule tables, matrix size, config and consumers snippets."""

from __future__ import annotations

import json
import re
from pathlib import Path

from eventbus_governance import BREAKING_RULES, LINT_RULES, load_config, load_consumers

from .conftest import REPO_ROOT
from .test_breaking_matrix import CASE_DIRS, MATRIX

DOC = (REPO_ROOT / "docs" / "governance.md").read_text(encoding="utf-8")


def _rows(prefix: str) -> list[str]:
    return re.findall(r"^\| `([A-Z_]+)` \| (.+?) \|", DOC.split(prefix, 1)[1].split("\n## ", 1)[0], re.MULTILINE)


def test_lint_table_lists_every_rule_with_its_purpose_in_order() -> None:
    assert _rows("## Lint rules") == [(rule.id, rule.purpose) for rule in LINT_RULES]


def test_breaking_table_lists_every_rule_with_its_purpose_in_order() -> None:
    assert _rows("### Rules") == [(rule.id, rule.purpose) for rule in BREAKING_RULES]


def test_the_matrix_size_the_docs_give_is_the_real_one() -> None:
    assert f"{len(CASE_DIRS)} pairs, {len(MATRIX)} verdicts" in DOC


def test_the_config_snippet_loads(tmp_path: Path) -> None:
    snippet = re.search(r"```toml\n(.*?)```", DOC, re.DOTALL)
    assert snippet is not None
    (tmp_path / "pyproject.toml").write_text(snippet.group(1))

    config = load_config(tmp_path)

    assert config.lint.disable == ("ENUM_VALUES_SNAKE_CASE",) and config.lint.ignore == ("contracts/legacy",)


def test_the_consumers_snippet_is_the_repository_file(tmp_path: Path) -> None:
    snippet = re.search(r"```json\n(.*?)```", DOC.split("## The consumers file", 1)[1], re.DOTALL)
    assert snippet is not None
    (tmp_path / "consumers.json").write_text(snippet.group(1))

    assert load_consumers(tmp_path).consumers == load_consumers(REPO_ROOT / "contracts").consumers
    assert json.loads(snippet.group(1)) == json.loads((REPO_ROOT / "contracts" / "consumers.json").read_text())
