"""One AMQP stack: the SDK runs on its own client; pika and aio-pika are for tests and the optional
aio-pika transport (``eventbus/transports/…aio_pika…``), which a user chooses explicitly."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

SDK = Path(__file__).resolve().parents[2] / "python_sdk" / "eventbus"
OTHER_STACKS = {"pika", "aio_pika", "aiormq"}


def _allowed(path: Path) -> bool:
    """The optional aio-pika transport is the one place that may use aio-pika."""
    relative = path.relative_to(SDK).as_posix()
    return relative.startswith("transports/") and ("aio_pika" in relative or "aiopika" in relative)


def _modules() -> list[str]:
    names = []
    for path in sorted(SDK.rglob("*.py")):
        if _allowed(path):
            continue
        parts = ["eventbus", *path.relative_to(SDK).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


def test_no_sdk_module_imports_another_amqp_stack_in_its_source() -> None:
    offenders = []
    for path in SDK.rglob("*.py"):
        if _allowed(path):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(SDK)}: {n}" for n in names if n.split(".")[0] in OTHER_STACKS]
    assert not offenders


def test_importing_every_sdk_module_loads_neither_pika_nor_aio_pika() -> None:
    modules = _modules()
    assert "eventbus._sync_bus" in modules and "eventbus.transports._amqp._connection" in modules
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "import eventbus\n"
        "for name in eventbus.__all__: getattr(eventbus, name)\n"  # the lazily loaded names too
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(OTHER_STACKS)!r})))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(result.stdout.splitlines()[-1]) == []
