"""Building the conformance harnesses (tests/conformance/harness) against any generated output.

The conformance suite builds them on the committed bindings; the corpus test on bindings
generated from the corpus. Both the TypeScript package and the Go module are generated with the
same module name (``eventbus.example/contracts``) the Go harness imports.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from .builds import go_env, go_workspace, have_go, link_node_modules, run, tsc

__all__ = ["HARNESS", "HARNESS_GO_MODULE", "build_go_harness", "build_node_harness", "python_harness"]

HARNESS = Path(__file__).resolve().parents[1] / "conformance" / "harness"
HARNESS_GO_MODULE = "eventbus.example/contracts"


def python_harness() -> list[str]:
    return [sys.executable, str(HARNESS / "harness.py")]


def build_node_harness(package: Path, build: Path) -> list[str]:
    """Compile the generated package at ``package`` with the harness (tsc --strict) in ``build``."""
    shutil.copytree(package, build / "pkg", ignore=shutil.ignore_patterns("node_modules", "dist"))
    (build / "harness").mkdir()
    for name in ("harness.ts", "runtime_cli.ts", "tsconfig.json"):
        shutil.copy(HARNESS / name, build / "harness" / name)
    (build / "package.json").write_text('{"private": true, "type": "module"}\n', encoding="utf-8")
    link_node_modules(build)
    tsc(build / "harness")
    return ["node", str(build / "dist" / "harness" / "harness.js")]


def build_go_harness(module: Path, build: Path, harness: Path = HARNESS / "go") -> list[str]:
    """``go vet`` the generated module at ``module`` and build the harness against it in ``build``
    (``harness``: the conformance harness, or ``HARNESS / "go-workflows"`` on the workflow demo's module)."""
    if not have_go():
        pytest.fail("Go and the Debian Go libraries are missing: .ci/run installs them (golang-go, ...-dev)")
    work = go_workspace(build, [module, harness])
    run(["go", "vet", "./..."], module, env=go_env(work))
    binary = build / "harness"
    run(["go", "build", "-o", str(binary), "."], harness, env=go_env(work))
    return [str(binary)]
