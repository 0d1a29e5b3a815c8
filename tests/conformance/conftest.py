"""The three conformance harnesses, each built once per session from the committed generated code."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.toolchain.builds import go_env, go_workspace, have_go, link_node_modules, run, tsc

ROOT = Path(__file__).resolve().parents[2]
HARNESS = Path(__file__).resolve().parent / "harness"


@pytest.fixture(scope="session")
def python_harness() -> list[str]:
    return [sys.executable, str(HARNESS / "harness.py")]


@pytest.fixture(scope="session")
def node_harness(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    build = tmp_path_factory.mktemp("node-harness")
    shutil.copytree(ROOT / "generated" / "typescript", build / "pkg", ignore=shutil.ignore_patterns("node_modules", "dist"))
    (build / "harness").mkdir()
    for name in ("harness.ts", "tsconfig.json"):
        shutil.copy(HARNESS / name, build / "harness" / name)
    link_node_modules(build)
    tsc(build / "harness")
    return ["node", str(build / "dist" / "harness" / "harness.js")]


@pytest.fixture(scope="session")
def go_harness(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    if not have_go():
        pytest.fail("Go and the Debian Go libraries are missing: .ci/run installs them (golang-go, ...-dev)")
    build = tmp_path_factory.mktemp("go-harness")
    work = go_workspace(build, [ROOT / "generated" / "go", HARNESS / "go"])
    binary = build / "harness"
    run(["go", "build", "-o", str(binary), "."], HARNESS / "go", env=go_env(work))
    return [str(binary)]
