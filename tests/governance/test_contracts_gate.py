"""``.ci/contracts-gate``: how CI finds the base of ``breaking`` in a fresh clone, and fails on a break.

The gate compares against HEAD~1 (the first parent); a shallow clone is deepened by one commit
first, and a single-commit history has nothing to compare against.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import GIT_ENV, REPO_ROOT, git

GATE = REPO_ROOT / ".ci" / "contracts-gate"
ENDED = "contracts/chat/conversation.ended.v1.schema.json"


def run_gate(repo: Path) -> subprocess.CompletedProcess[str]:
    env = {**GIT_ENV, "EVENTBUS": f"{sys.executable} -m eventbus_cli", "GITHUB_ACTIONS": ""}
    env.pop("EVENTBUS_BREAKING_BASE", None)
    return subprocess.run(["bash", str(GATE)], cwd=repo, env=env, capture_output=True, text=True, timeout=120)


def new_repo(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    shutil.copytree(REPO_ROOT / "contracts", path / "contracts")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "contracts")
    return path


def commit_breaking_change(repo: Path) -> None:
    path = repo / ENDED
    schema = json.loads(path.read_text())
    schema["properties"]["message_count"]["minimum"] = 1  # the examples still pass: lint stays clean
    path.write_text(json.dumps(schema, indent=2) + "\n")
    git(repo, "commit", "-qam", "no empty conversations")


def test_a_single_commit_history_has_no_base_and_passes(tmp_path: Path) -> None:
    result = run_gate(new_repo(tmp_path / "repo"))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "HEAD has no parent in this clone" in result.stdout


def test_a_breaking_commit_fails_the_build_naming_the_consumer(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    commit_breaking_change(repo)

    result = run_gate(repo)

    assert result.returncode == 1
    assert "BOUND_TIGHTENED chat.conversation.ended.v1 /properties/message_count/minimum" in result.stdout
    assert "context-handling (python)" in result.stdout
    assert "error: 1 breaking change(s) against HEAD~1" in result.stderr


def test_a_shallow_clone_is_deepened_to_find_its_base(tmp_path: Path) -> None:
    origin = new_repo(tmp_path / "origin")
    commit_breaking_change(origin)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{origin}", str(clone)], env=GIT_ENV, check=True)
    assert git(clone, "rev-parse", "--is-shallow-repository").strip() == "true"

    result = run_gate(clone)

    assert "fetching one more commit" in result.stdout
    assert result.returncode == 1 and "BOUND_TIGHTENED" in result.stdout


def test_lint_findings_fail_the_gate_before_breaking_runs(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    path = repo / ENDED
    path.write_text(path.read_text().replace('"ended_reason": {\n      "description"', '"ended_reason": {\n      "x"'))
    git(repo, "commit", "-qam", "undescribed")

    result = run_gate(repo)

    assert result.returncode == 1
    assert "PROPERTY_DESCRIBED property 'ended_reason' has no description" in result.stdout
    assert "breaking changes against" not in result.stdout
