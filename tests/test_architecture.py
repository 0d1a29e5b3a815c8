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


SDK = PACKAGES["eventbus"]
# The bus core talks to a Transport (transports/_protocol.py) and to no AMQP client directly.
BUS_CORE = ("_async_bus.py", "_async_publisher.py", "_async_consumer.py", "_settlement.py", "_dispatch.py")
AMQP_CLIENTS = {"transports._amqp", "transports._broker", "transports._connect", "aio_pika", "aiormq", "pika"}
# Each capability has its room (docs/architecture.md): the core (the flat modules) knows none of
# the optional rooms; the exactly-once SQL machinery and the scheduler do not know each other's
# insides beyond what is named here.
ROOMS = ("sql", "scheduler", "tasks", "testing", "transports", "workflow_engine", "workflows")


def _sdk_imports(path: Path) -> set[str]:
    """What ``path`` imports: top-level names of other packages, and eventbus modules as dotted
    paths inside the package (``transports._amqp``, ``sql._outbox``, ``_settings`` …)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = list(path.relative_to(SDK).parent.parts)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if node.module:
                    found.add(node.module.split(".")[0])
                continue
            base = package[: len(package) - (node.level - 1)]
            if node.module:
                found.add(".".join([*base, node.module]))
            else:
                found.update(".".join([*base, alias.name]) for alias in node.names)
    return found


def _reaches(names: set[str], targets: set[str] | tuple[str, ...]) -> set[str]:
    return {n for n in names for t in targets if n == t or n.startswith(t + ".")}


@pytest.mark.parametrize("module", BUS_CORE)
def test_the_bus_core_reaches_the_broker_only_through_the_transport_seam(module: str) -> None:
    assert not _reaches(_sdk_imports(SDK / module), AMQP_CLIENTS), module


def test_transports_never_import_the_bus_or_the_test_helpers() -> None:
    for path in (SDK / "transports").rglob("*.py"):
        names = _sdk_imports(path)
        assert not _reaches(names, ("testing", "_async_bus", "_async_consumer", "_async_publisher", "sql",
                                    "scheduler")), path
        if path.name != "_aio_pika.py":
            assert not names & {"aio_pika", "aiormq", "pika"}, f"{path}: aio-pika belongs to _aio_pika.py only"


def test_the_testing_helpers_use_no_amqp_client() -> None:
    for path in (SDK / "testing").rglob("*.py"):
        assert not _reaches(_sdk_imports(path), AMQP_CLIENTS), path


def test_the_core_knows_none_of_the_optional_rooms() -> None:
    """The flat modules (the bus, envelope, contracts, retries, topology) import no room; the
    package's ``__init__`` only names the rooms' public classes, loaded on first use."""
    offenders = {
        f"{path.name} imports {name}"
        for path in SDK.glob("*.py")
        if path.name != "__init__.py"
        for name in _reaches(_sdk_imports(path), ("sql", "scheduler", "testing"))
    }
    assert not offenders, sorted(offenders)


def test_the_sql_machinery_and_the_scheduler_keep_to_their_rooms() -> None:
    for path in (SDK / "sql").rglob("*.py"):
        assert not _reaches(_sdk_imports(path), ("scheduler", "testing")), path
    for path in (SDK / "scheduler").rglob("*.py"):
        assert not _reaches(_sdk_imports(path), ("testing",)), path


def test_tasks_are_a_room_the_buses_hook_into_and_that_knows_no_broker() -> None:
    """``tasks/`` makes contracts from functions (no I/O): it reaches the broker only through the
    bus it is given, and knows none of the other rooms; of the core, only the two buses (and the
    package's ``__init__``) import it."""
    for path in (SDK / "tasks").rglob("*.py"):
        names = _sdk_imports(path)
        assert not _reaches(names, ("transports", "sql", "scheduler", "testing", "_async_bus", "_sync_bus")), path
        assert not names & {"aio_pika", "aiormq", "pika"}, path
    hooks = {path.name for path in SDK.glob("*.py") if _reaches(_sdk_imports(path), ("tasks",))}
    assert hooks <= {"__init__.py", "_async_bus.py", "_sync_bus.py"}, sorted(hooks)


def test_workflows_are_a_room_the_buses_and_the_consumer_hook_into_and_that_knows_no_broker() -> None:
    """``workflows/`` (the canvas, the slip, the step runtime's decisions) has no I/O: it reaches the
    broker only through the bus and consumer that call it, and knows none of the other rooms; of the
    core, only the two buses, the consumer (and the package's ``__init__``) import it."""
    for path in (SDK / "workflows").rglob("*.py"):
        names = _sdk_imports(path)
        assert not _reaches(names, ("transports", "sql", "scheduler", "testing", "tasks", "_async_bus", "_sync_bus",
                                    "_async_consumer", "_async_publisher")), path
        assert not names & {"aio_pika", "aiormq", "pika", "redis"}, path
    hooks = {path.name for path in SDK.glob("*.py") if _reaches(_sdk_imports(path), ("workflows",))}
    assert hooks <= {"__init__.py", "_async_bus.py", "_sync_bus.py", "_async_consumer.py"}, sorted(hooks)


def test_the_workflow_engine_is_a_room_only_testing_hooks_into() -> None:
    """``workflow_engine/`` keeps the state of workflows (Redis): it works on the bus it is given and
    the no-I/O ``workflows`` room, never on a transport; of the SDK, only ``testing`` imports it (its
    memory store), and ``workflows`` does not know it."""
    for path in (SDK / "workflow_engine").rglob("*.py"):
        names = _sdk_imports(path)
        assert not _reaches(names, ("transports", "sql", "scheduler", "testing", "tasks", "_async_consumer",
                                    "_async_publisher")), path
        assert not names & {"aio_pika", "aiormq", "pika"}, path
    hooks = {str(path.relative_to(SDK)) for path in SDK.rglob("*.py")
             if path.parent.name != "workflow_engine" and _reaches(_sdk_imports(path), ("workflow_engine",))}
    assert hooks <= {"testing/__init__.py"}, sorted(hooks)


def test_every_room_is_a_package() -> None:
    for room in ROOMS:
        assert (SDK / room / "__init__.py").is_file(), room
