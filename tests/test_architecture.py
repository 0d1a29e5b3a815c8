"""The direction of imports written down in docs/architecture.md, checked."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "eventbus": ROOT / "python_sdk" / "eventbus",
    "eventbus_contracts": ROOT / "generated" / "python" / "eventbus_contracts",
    "eventbus_codegen": ROOT / "codegen" / "eventbus_codegen",
    "eventbus_governance": ROOT / "governance" / "eventbus_governance",
    "eventbus_cli": ROOT / "cli" / "eventbus_cli",
    "context_handling": ROOT / "services" / "context_handling",
}
FORBIDDEN = {
    "eventbus": {"eventbus_contracts", "eventbus_codegen", "eventbus_governance", "eventbus_cli", "context_handling"},
    "eventbus_contracts": {"eventbus_codegen", "eventbus_governance", "eventbus_cli", "context_handling"},
    # the generators know nothing of the contract tooling built on their loader
    "eventbus_codegen": {"eventbus_governance", "eventbus_cli", "eventbus_contracts", "context_handling"},
    "eventbus_governance": {"eventbus_cli", "eventbus_contracts", "context_handling"},
    # the command line works on any team's contracts: it reads them at run time, never imports the example package
    "eventbus_cli": {"context_handling", "eventbus_contracts"},
    # the reference service is a user of the SDK like any other: public API and generated contracts only
    "context_handling": {"eventbus_codegen", "eventbus_governance", "eventbus_cli"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_imports_point_one_way(package: str) -> None:
    offenders = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in PACKAGES[package].rglob("*.py")
        for name in _imports(path) & FORBIDDEN[package]
    }
    assert not offenders, sorted(offenders)


@pytest.mark.parametrize("package", ["eventbus_contracts", "context_handling"])
def test_generated_code_and_the_service_use_only_the_public_sdk_api(package: str) -> None:
    for path in PACKAGES[package].rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "from eventbus._" not in text and "import eventbus._" not in text, path
