"""``eventbus contracts lint|breaking`` and ``eventbus docs build`` as a user runs them: output, exit codes, config."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO_ROOT, git, repo_with_change

LINT_DATA = Path(__file__).parent / "lint"
BREAKING_DATA = Path(__file__).parent / "breaking"


def eventbus(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "eventbus_cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


@pytest.fixture
def bad_tree(tmp_path: Path) -> Path:
    """A repository folder whose contracts/ breaks PROPERTY_DESCRIBED three times."""
    shutil.copytree(LINT_DATA / "PROPERTY_DESCRIBED" / "before", tmp_path, dirs_exist_ok=True)
    return tmp_path


def test_lint_passes_on_the_repository() -> None:
    result = eventbus("contracts", "lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("no lint findings")


def test_lint_findings_are_path_line_col_rule_message_and_exit_1(bad_tree: Path) -> None:
    result = eventbus("contracts", "lint", "--contracts", "contracts", cwd=bad_tree)

    assert result.stdout.splitlines() == [
        "contracts/common/time.schema.json:6:13 PROPERTY_DESCRIBED definition 'Timestamp' has no description",
        "contracts/shop/order.placed.v1.schema.json:17:5 PROPERTY_DESCRIBED property 'order_id' has no description",
        "contracts/shop/order.placed.v1.schema.json:23:5 PROPERTY_DESCRIBED definition 'Line' has no description",
    ]
    assert_one_line_error(result, "3 lint finding(s)")


def test_lint_paths_narrow_the_report_to_those_files(bad_tree: Path) -> None:
    result = eventbus("contracts", "lint", "--contracts", "contracts", "contracts/common", cwd=bad_tree)

    assert [line.split(" ")[0] for line in result.stdout.splitlines()] == ["contracts/common/time.schema.json:6:13"]
    assert result.returncode == 1


def test_lint_json_output_is_only_json(bad_tree: Path) -> None:
    result = eventbus("contracts", "lint", "--contracts", "contracts", "--format", "json", cwd=bad_tree)

    findings = json.loads(result.stdout)
    assert [(f["rule"], f["line"], f["column"]) for f in findings] == [
        ("PROPERTY_DESCRIBED", 6, 13), ("PROPERTY_DESCRIBED", 17, 5), ("PROPERTY_DESCRIBED", 23, 5)]
    assert result.returncode == 1


def test_a_rule_disabled_in_pyproject_is_not_run(bad_tree: Path) -> None:
    (bad_tree / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.eventbus]\nversion = 1\n\n'
        '[tool.eventbus.lint]\ndisable = ["PROPERTY_DESCRIBED"]\n'
    )
    result = eventbus("contracts", "lint", cwd=bad_tree)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "no lint findings (17 rules)\n"


def test_ignored_paths_in_eventbus_toml_are_skipped(bad_tree: Path) -> None:
    (bad_tree / "eventbus.toml").write_text('version = 1\n\n[lint]\nignore = ["contracts/shop"]\n')
    result = eventbus("contracts", "lint", "--contracts", "contracts", cwd=bad_tree)

    assert [line.split(":")[0] for line in result.stdout.splitlines()] == ["contracts/common/time.schema.json"]


@pytest.mark.parametrize(("files", "fragments"), [
    ({"eventbus.toml": 'version = 1\n[lint]\ndisable = ["NO_SUCH_RULE"]\n'},
     ("eventbus.toml#/lint/disable/0", "unknown lint rule 'NO_SUCH_RULE'")),
    ({"eventbus.toml": "version = 2\n"}, ("eventbus.toml#/version",)),
    ({"eventbus.toml": 'version = 1\n[lint]\ndisabled = ["X"]\n'}, ("eventbus.toml#/lint/disabled",)),
    ({"eventbus.toml": "version = 1\n", "pyproject.toml": "[tool.eventbus]\nversion = 1\n"},
     ("keep one",)),
    ({"eventbus.toml": "version = [\n"}, ("invalid TOML",)),
])
def test_a_bad_config_is_one_line_naming_the_key(bad_tree: Path, files: dict[str, str], fragments: tuple[str]) -> None:
    for name, text in files.items():
        (bad_tree / name).write_text(text)

    assert_one_line_error(eventbus("contracts", "lint", "--contracts", "contracts", cwd=bad_tree), *fragments)


def test_lint_refuses_paths_outside_the_tree(bad_tree: Path) -> None:
    assert_one_line_error(eventbus("contracts", "lint", "--contracts", "contracts", "/etc", cwd=bad_tree),
                          "not inside the contracts tree")


def test_list_rules_prints_ids_and_purposes() -> None:
    lint = eventbus("contracts", "lint", "--list-rules").stdout.splitlines()
    breaking = eventbus("contracts", "breaking", "--list-rules").stdout.splitlines()

    assert lint[0].split()[0] == "VALID_JSON" and len(lint) == 18
    assert any(line.startswith("MAJOR_VERSION_STILL_CONSUMED ") for line in breaking)


def test_breaking_names_the_consumers_and_annotates_for_github(tmp_path: Path) -> None:
    case = BREAKING_DATA / "REQUIRED_ADDED" / "names_the_registered_consumers"
    contracts = repo_with_change(tmp_path / "repo", case / "before", case / "after")

    result = eventbus("contracts", "breaking", "--against", "HEAD", "--format", "github", cwd=contracts.parent)

    assert result.stdout == (
        "::error file=contracts/shop/order.placed.v1.schema.json,line=15,col=3,title=REQUIRED_ADDED::"
        "shop.order.placed.v1 /required: field 'currency' is now required; breaks consumers under BACKWARD; "
        "registered consumers affected: billing (go)\n"
    )
    assert_one_line_error(result, "1 breaking change(s) against HEAD")


def test_breaking_passes_a_compatible_change_and_lists_it_with_all(tmp_path: Path) -> None:
    case = BREAKING_DATA / "FIELD_ADDED" / "field_in_open_object"
    # A field added to an open object narrows it: breaks consumers, so under FORWARD it is allowed.
    contracts = repo_with_change(tmp_path / "repo", case / "before", case / "after", mode="FORWARD")

    result = eventbus("contracts", "breaking", "--against", "HEAD", "--all", cwd=contracts.parent)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "contracts/shop/order.placed.v1.schema.json:52:9 FIELD_ADDED shop.order.placed.v1 "
        "/properties/metadata/properties/campaign: field 'campaign' added to an open object; allowed under FORWARD "
        "(would break consumers)",
        "no breaking changes against HEAD (1 change(s) checked)",
    ]


def test_breaking_against_an_unknown_ref_is_one_line(tmp_path: Path) -> None:
    case = BREAKING_DATA / "NO_CHANGE" / "annotations_only"
    contracts = repo_with_change(tmp_path / "repo", case / "before", case / "after")

    assert_one_line_error(eventbus("contracts", "breaking", "--against", "v9.9", cwd=contracts.parent),
                          "unknown git ref 'v9.9'")


def test_breaking_outside_a_git_repository_is_one_line(tmp_path: Path) -> None:
    shutil.copytree(REPO_ROOT / "contracts", tmp_path / "contracts")

    assert_one_line_error(eventbus("contracts", "breaking", "--against", "HEAD", cwd=tmp_path),
                          "not inside a git repository")


def test_breaking_against_a_ref_before_the_contracts_existed(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "README").write_text("first\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "no contracts yet")
    shutil.copytree(REPO_ROOT / "contracts", repo / "contracts")

    result = eventbus("contracts", "breaking", "--against", "HEAD", cwd=repo)

    assert result.returncode == 0, result.stderr
    assert "no breaking changes against HEAD (3 change(s) checked)" in result.stdout


def test_docs_build_writes_the_catalog(tmp_path: Path) -> None:
    result = eventbus("docs", "build", "--out", str(tmp_path / "site"))

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "index.html").is_file() and (tmp_path / "site" / "asyncapi.yaml").is_file()
    assert "12 file(s) written" in result.stdout
