"""One harness per transport, so the behaviour suite runs the same cases on each.

``memory`` runs on ``eventbus.testing.MemoryBroker`` with its clock; ``lean`` and ``aio-pika``
run on the real broker, each test in a throwaway vhost (``rabbitmq_vhost`` of the plugin), with
real waiting where the memory harness moves its clock.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
import pytest

from eventbus import BusSettings, EventBus
from eventbus.testing import MemoryBroker, StoredMessage
from eventbus.transports import Properties


class Harness:
    """What a behaviour case needs beyond the bus: time, waiting, and reading a queue directly."""

    name: str

    def bus(self, **settings: Any) -> EventBus:
        raise NotImplementedError

    async def advance(self, seconds: float) -> None:
        raise NotImplementedError

    async def until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        raise NotImplementedError

    async def take(self, queue: str, count: int, timeout: float = 10.0) -> list[StoredMessage]:
        """Up to ``count`` messages from ``queue``, removed from it."""
        raise NotImplementedError

    async def depth(self, queue: str) -> int:
        raise NotImplementedError

    async def drop_connections(self) -> int:
        """Cut every client connection of this test (a network fault); how many were cut."""
        raise NotImplementedError


class MemoryHarness(Harness):
    name = "memory"

    def __init__(self) -> None:
        self.broker = MemoryBroker()

    def bus(self, **settings: Any) -> EventBus:
        return EventBus(BusSettings(service="behaviour", **settings), transport=self.broker.transport())

    async def advance(self, seconds: float) -> None:
        await self.broker.clock.advance(seconds)

    async def until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """True once ``predicate`` holds; False once the broker is idle without it (nothing more
        will happen) or after ``timeout`` (handlers waiting on the test keep the broker busy)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        idle = 0
        while loop.time() < deadline:
            if predicate():
                return True
            idle = idle + 1 if not self.broker.busy() else 0
            if idle > 3:
                return False
            await asyncio.sleep(0 if idle else 0.001)
        return predicate()

    async def take(self, queue: str, count: int, timeout: float = 10.0) -> list[StoredMessage]:
        await self.broker.settle()
        found = self.broker.messages(queue)[:count]
        stored = self.broker._queues[queue].messages
        for _ in found:
            stored.popleft()
        return found

    async def depth(self, queue: str) -> int:
        return len(self.broker.messages(queue))

    async def drop_connections(self) -> int:
        count = len(self.broker._sessions) + len(self.broker.locks())
        self.broker.drop_connections()
        return count


class BrokerHarness(Harness):
    def __init__(self, transport: str, url: str) -> None:
        self.name = transport
        self.url = url
        self._reader: aio_pika.abc.AbstractConnection | None = None

    def bus(self, **settings: Any) -> EventBus:
        settings.setdefault("confirm_timeout", 10.0)
        return EventBus(BusSettings(service="behaviour", urls=(self.url,), transport=self.name, **settings))

    async def advance(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if predicate():
                return True
            await asyncio.sleep(0.02)
        return predicate()

    async def _channel(self) -> aio_pika.abc.AbstractChannel:
        if self._reader is None:
            self._reader = await aio_pika.connect(self.url)
        return await self._reader.channel()

    async def take(self, queue: str, count: int, timeout: float = 10.0) -> list[StoredMessage]:
        """An independent reader (aio-pika's basic.get), not the transport under test."""
        channel = await self._channel()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        found: list[StoredMessage] = []
        source = await channel.get_queue(queue, ensure=False)
        try:
            while len(found) < count and loop.time() < deadline:
                message = await source.get(no_ack=True, fail=False)
                if message is None:
                    await asyncio.sleep(0.05)
                    continue
                properties = Properties(headers=dict(message.headers), message_id=message.message_id,
                                        message_type=message.type, content_type=message.content_type)
                found.append(StoredMessage(message.exchange or "", message.routing_key or "", properties, message.body,
                                           redelivered=bool(message.redelivered)))
        finally:
            await channel.close()
        return found

    async def depth(self, queue: str) -> int:
        channel = await self._channel()
        try:
            declared = await channel.declare_queue(queue, passive=True)
            return declared.declaration_result.message_count or 0
        finally:
            await channel.close()

    async def drop_connections(self) -> int:
        """``rabbitmqctl close_connection`` for every connection of this test's private vhost
        except the harness's own reader."""
        vhost = unquote(urlsplit(self.url).path[1:])
        command = shutil.which("rabbitmqctl") or "rabbitmqctl"

        def close_all() -> int:
            listing = subprocess.run(
                [command, "list_connections", "pid", "vhost", "client_properties", "--no-table-headers", "-q"],
                capture_output=True, text=True, timeout=60, check=True,
            ).stdout
            closed = 0
            for line in listing.splitlines():
                parts = line.split("\t")
                if len(parts) >= 3 and parts[1] == vhost and "behaviour:" in parts[2]:
                    done = subprocess.run([command, "close_connection", parts[0], "behaviour fault"],
                                          capture_output=True, timeout=60)
                    closed += done.returncode == 0
            return closed

        return await asyncio.to_thread(close_all)

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.close()


@pytest.fixture(
    params=[
        "memory",
        pytest.param("lean", marks=pytest.mark.broker),
        pytest.param("aio-pika", marks=pytest.mark.broker),
    ]
)
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    if request.param == "memory":
        yield MemoryHarness()
        return
    url = request.getfixturevalue("rabbitmq_vhost")
    broker = BrokerHarness(request.param, url)
    yield broker
    await broker.close()
