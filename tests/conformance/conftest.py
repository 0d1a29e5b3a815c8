"""The three conformance harnesses, each built once per session from the committed generated code."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.toolchain.harnesses import build_go_harness, build_node_harness, python_harness

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def node_harness(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return build_node_harness(ROOT / "generated" / "typescript", tmp_path_factory.mktemp("node-harness"))


@pytest.fixture(scope="session")
def go_harness(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return build_go_harness(ROOT / "generated" / "go", tmp_path_factory.mktemp("go-harness"))


@pytest.fixture(scope="session", name="python_harness")
def python_harness_fixture() -> list[str]:
    return python_harness()
