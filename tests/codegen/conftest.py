"""Shared fixtures: the repository's contracts, and copies of them to break on purpose."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).parents[2]
CONTRACTS = REPO_ROOT / "contracts"
GENERATED_PACKAGE = REPO_ROOT / "generated" / "python" / "eventbus_contracts"

EditSchema = Callable[[str, Callable[[dict[str, Any]], object]], Path]


@pytest.fixture
def contracts_copy(tmp_path: Path) -> Path:
    """A private copy of contracts/ (named ``contracts`` so generated headers match)."""
    root = tmp_path / "contracts"
    shutil.copytree(CONTRACTS, root)
    return root


@pytest.fixture
def edit_schema(contracts_copy: Path) -> EditSchema:
    """``edit_schema("chat/x.schema.json", change)``: apply ``change`` to that file of the copy."""

    def edit(relative: str, change: Callable[[dict[str, Any]], object]) -> Path:
        path = contracts_copy / relative
        schema = json.loads(path.read_text(encoding="utf-8"))
        change(schema)
        path.write_text(json.dumps(schema, indent=2), encoding="utf-8")
        return path

    return edit
