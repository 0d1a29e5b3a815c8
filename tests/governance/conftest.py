"""Shared helpers for governance tests: contracts trees in throw-away git repositories."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent
REPO_ROOT = HERE.parents[1]
GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "eventbus tests", "GIT_AUTHOR_EMAIL": "tests@eventbus.invalid",
    "GIT_COMMITTER_NAME": "eventbus tests", "GIT_COMMITTER_EMAIL": "tests@eventbus.invalid",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
}


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=repo, env=GIT_ENV, capture_output=True, text=True, check=True)
    return result.stdout


def copy_tree(source: Path, destination: Path, *, mode: str | None = None) -> None:
    """Copy a contracts tree; with ``mode``, every ``BACKWARD`` contract gets that compatibility mode instead."""
    shutil.copytree(source, destination)
    if mode is None:
        return
    for path in destination.rglob("*.schema.json"):
        text = path.read_text(encoding="utf-8")  # edited as text, so line numbers stay those of the data
        path.write_text(text.replace('"compatibility": "BACKWARD"', f'"compatibility": "{mode}"'), encoding="utf-8")


def repo_with_change(repo: Path, before: Path, after: Path, *, mode: str | None = None) -> Path:
    """A git repo whose HEAD holds ``before`` as contracts/ and whose working tree holds ``after``."""
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    copy_tree(before, repo / "contracts", mode=mode)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "before")
    shutil.rmtree(repo / "contracts")
    copy_tree(after, repo / "contracts", mode=mode)
    return repo / "contracts"


@pytest.fixture
def make_repo(tmp_path: Path):
    counter = iter(range(10_000))

    def make(before: Path, after: Path, *, mode: str | None = None) -> Path:
        return repo_with_change(tmp_path / f"repo{next(counter)}", before, after, mode=mode)

    return make


@pytest.fixture
def contract_text() -> str:
    return (REPO_ROOT / "contracts" / "chat" / "conversation.ended.v1.schema.json").read_text(encoding="utf-8")
