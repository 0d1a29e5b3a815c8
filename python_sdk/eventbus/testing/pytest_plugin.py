"""pytest fixtures for testing services built on eventbus (registered as the ``eventbus`` plugin).

    memory_broker   a fresh ``MemoryBroker`` per test
    memory_bus      an ``EventBus`` on it (service "test"); subscribe, ``await memory_bus.start()``
    published       ``PublishedEvents``: ``published.one(FriendshipStatusChanged, status="friend")``
    clock           the broker's clock: ``await clock.advance(30)`` delivers what falls due
    rabbitmq_vhost  the AMQP URL of a throwaway vhost on a real broker (``rabbitmqctl``), deleted after
    rabbitmq_bus    an ``EventBus`` on that vhost

The real-broker fixtures use ``EVENTBUS_TEST_URL`` (default: guest on 127.0.0.1:5672) and the
``rabbitmqctl`` on the PATH (or ``EVENTBUS_RABBITMQCTL``); without it they skip the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

from .._async_bus import EventBus
from .._settings import DEFAULT_URL, BusSettings
from ..transports._memory import MemoryBroker, MemoryClock
from . import memory_bus as _memory_bus
from ._published import PublishedEvents

try:
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # pragma: no cover - without pytest-asyncio async fixtures need another runner
    _async_fixture = pytest.fixture  # type: ignore[assignment]  # same call shape, other overloads

__all__ = ["clock", "memory_broker", "memory_bus", "published", "rabbitmq_bus", "rabbitmq_vhost"]


@pytest.fixture
def memory_broker() -> MemoryBroker:
    return MemoryBroker()


@_async_fixture
async def memory_bus(memory_broker: MemoryBroker) -> AsyncIterator[EventBus]:
    bus = _memory_bus(memory_broker, "test", shutdown_grace=1.0)
    yield bus
    await bus.close(grace=0)


@pytest.fixture
def published(memory_broker: MemoryBroker) -> PublishedEvents:
    return PublishedEvents(memory_broker)


@pytest.fixture
def clock(memory_broker: MemoryBroker) -> MemoryClock:
    return memory_broker.clock


_DELETING: list[subprocess.Popen[bytes]] = []


def _rabbitmqctl_command() -> str:
    command = os.environ.get("EVENTBUS_RABBITMQCTL") or shutil.which("rabbitmqctl")
    if command is None:
        pytest.skip("rabbitmqctl is not available to make a throwaway vhost")
    return command


def _rabbitmqctl(*args: str) -> None:
    subprocess.run([_rabbitmqctl_command(), *args], check=True, capture_output=True, timeout=60)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Wait for the vhost deletions still running (they run beside the next tests)."""
    while _DELETING:
        _DELETING.pop().wait(timeout=60)


@pytest.fixture
def rabbitmq_vhost() -> Iterator[str]:
    """A fresh vhost on the test broker, its URL yielded, deleted with everything in it afterwards."""
    url = os.environ.get("EVENTBUS_TEST_URL", DEFAULT_URL)
    parts = urlsplit(url)
    vhost = f"eventbus-test-{uuid.uuid4().hex[:12]}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, parts.username or "guest", ".*", ".*", ".*")
        yield urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))
    finally:
        # Deleting a vhost takes rabbitmqctl a second or two: let it run beside the next test.
        command = [_rabbitmqctl_command(), "delete_vhost", vhost]
        _DELETING.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))


@_async_fixture
async def rabbitmq_bus(rabbitmq_vhost: str) -> AsyncIterator[EventBus]:
    settings: dict[str, Any] = {"confirm_timeout": 10.0, "shutdown_grace": 5.0}
    bus = EventBus(BusSettings(service="test", urls=(rabbitmq_vhost,), **settings))
    yield bus
    await bus.close(grace=0)
