"""Fault suite fixtures: a disposable broker node, a TCP proxy, and the tally of every scenario.

Run alone with ``pytest -m faults``. Every test asserts with sets of event ids (published,
handled, parked, lost); the tally is printed at the end of the run.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from eventbus import BusSettings

from ._broker import FaultBroker
from ._proxy import FaultProxy

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.faults)


@dataclass
class Tally:
    scenario: str
    published: int = 0
    handled: int = 0
    parked: int = 0
    lost: int = 0
    notes: dict[str, Any] = field(default_factory=dict)


TALLIES: list[Tally] = []
BOOT: dict[str, float] = {}


@pytest.fixture
def tally(request: pytest.FixtureRequest) -> Tally:
    entry = Tally(request.node.name.removeprefix("test_"))
    TALLIES.append(entry)
    return entry


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TALLIES:
        return
    write = terminalreporter.write_line
    terminalreporter.section("fault suite tally (event ids)")
    if BOOT:
        write(f"disposable broker booted in {BOOT['seconds']:.1f}s")
    write(f"{'scenario':<62} {'published':>9} {'handled':>8} {'parked':>7} {'lost':>5}  notes")
    for t in TALLIES:
        notes = ", ".join(f"{k}={v}" for k, v in t.notes.items())
        write(f"{t.scenario[:62]:<62} {t.published:>9} {t.handled:>8} {t.parked:>7} {t.lost:>5}  {notes}")


@pytest.fixture(scope="session")
def fault_broker() -> Iterator[FaultBroker]:
    if shutil.which("rabbitmq-server") is None or shutil.which("rabbitmqctl") is None:
        pytest.skip("the fault suite needs RabbitMQ installed (rabbitmq-server, rabbitmqctl)")
    FaultBroker.stop_orphans()
    broker = FaultBroker()
    broker.start()
    BOOT["seconds"] = broker.boot_seconds
    yield broker
    broker.stop()


@pytest.fixture
def healthy_broker(fault_broker: FaultBroker) -> Iterator[FaultBroker]:
    """The node, guaranteed running and unblocked after the test, whatever the test did to it."""
    yield fault_broker
    fault_broker.start_app()  # a no-op when it is running
    fault_broker.unblock_publishers()


@pytest.fixture
def proxy(fault_broker: FaultBroker) -> Iterator[FaultProxy]:
    tcp = FaultProxy(fault_broker.port)
    yield tcp
    tcp.close()


@pytest.fixture
def service() -> str:
    return f"fault-{uuid.uuid4().hex[:10]}"


def fast_settings(service: str, url: str, **changes: Any) -> BusSettings:
    """Settings that notice faults quickly: 2 s heartbeats, 5 s confirms, 3 s connects."""
    values: dict[str, Any] = {
        "service": service, "urls": (url,), "heartbeat": 2, "confirm_timeout": 5.0, "connect_timeout": 3.0,
        "reconnect_window": 30.0, "shutdown_grace": 5.0,
    }
    values.update(changes)
    return BusSettings(**values)


def wait_for(condition: Any, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)
