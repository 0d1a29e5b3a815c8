"""Events, waiting and raw queue access shared by the fault scenarios."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pika

from eventbus import EventBus, EventBusError
from eventbus_contracts import REGISTRY

CONTRACT = REGISTRY.get("chat.conversation.ended.v1")
EXAMPLE = CONTRACT.schema["examples"][0]


def event(name: str) -> Any:
    """A valid conversation.ended event whose conversation id is ``name``."""
    return CONTRACT.validate_python({**EXAMPLE, "conversation_id": name})


async def until(condition: Any, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def depth(url: str, queue: str) -> int:
    """Ready messages in ``queue`` (unacked deliveries are not counted)."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        connection.close()


def drain(url: str, queue: str) -> list[pika.BasicProperties]:
    """Take every message waiting in ``queue``; returns their properties, in order."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        found = []
        while True:
            method, properties, _ = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return found
            found.append(properties)
    finally:
        connection.close()


class Publishing:
    """Publishes one event after another from ``lanes`` concurrent tasks until stopped; every call
    ends up either in ``confirmed`` (returned) or in ``failed`` (raised)."""

    def __init__(self, bus: EventBus, lanes: int = 8, prefix: str = "evt") -> None:
        self.bus = bus
        self.prefix = prefix
        self.confirmed: set[str] = set()
        self.failed: dict[str, str] = {}
        self._stop = asyncio.Event()
        self._tasks = [asyncio.create_task(self._lane(n)) for n in range(lanes)]

    async def _lane(self, lane: int) -> None:
        n = 0
        while not self._stop.is_set():
            event_id = f"{self.prefix}-{lane}-{n}"
            n += 1
            try:
                await self.bus.publish(event(f"conv_{lane}_{n}"), event_id=event_id)
            except EventBusError as exc:
                self.failed[event_id] = type(exc).__name__
                await asyncio.sleep(0.05)
            else:
                self.confirmed.add(event_id)

    def count(self) -> int:
        return len(self.confirmed)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)
