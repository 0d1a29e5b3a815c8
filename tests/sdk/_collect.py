"""Run a bus's subscribers until they have seen given events, for round-trip tests.

The broker is shared: other tests and services publish the same event types meanwhile, so
collectors wait for, and return, the events with the ids a test published, and nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from eventbus import EventBus, EventContext, SyncEventBus


def _ours(received: list[tuple[Any, EventContext]], ids: set[str]) -> list[tuple[Any, EventContext]]:
    return [(event, ctx) for event, ctx in received if ctx.id in ids]


class AsyncCollector:
    """Subscribes to each given model and records (event, context) pairs."""

    def __init__(self, bus: EventBus, *models: type[Any]) -> None:
        self.received: list[tuple[Any, EventContext]] = []
        self._changed = asyncio.Event()
        for model in models:
            bus.subscribe(model)(self._record)

    async def _record(self, event: Any, ctx: EventContext) -> None:
        self.received.append((event, ctx))
        self._changed.set()

    async def wait_for_ids(self, ids: Iterable[str], timeout: float = 10.0) -> list[tuple[Any, EventContext]]:
        wanted = set(ids)

        async def enough() -> None:
            while not wanted <= {ctx.id for _, ctx in self.received}:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(enough(), timeout)
        return _ours(self.received, wanted)


class SyncCollector:
    def __init__(self, bus: SyncEventBus, *models: type[Any]) -> None:
        self.bus = bus
        self.received: list[tuple[Any, EventContext]] = []
        for model in models:
            bus.subscribe(model)(self._record)

    def _record(self, event: Any, ctx: EventContext) -> None:
        self.received.append((event, ctx))

    def wait_for_ids(self, ids: Iterable[str], timeout: float = 10.0) -> list[tuple[Any, EventContext]]:
        wanted = set(ids)
        self.bus.run(until=lambda: wanted <= {ctx.id for _, ctx in self.received}, timeout=timeout)
        return _ours(self.received, wanted)
