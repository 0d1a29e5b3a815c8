"""Run a bus's subscribers until they have seen enough, for round-trip tests.

The broker is shared with other test runs that publish the same event types, so a collector given
the ids it waits for keeps only those (other publishers' events reach the test's queues too).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from typing import Any

from eventbus import EventBus, EventContext, SyncEventBus


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

    async def wait_for(
        self, count: int, timeout: float = 10.0, ids: Collection[str] | None = None
    ) -> list[tuple[Any, EventContext]]:
        async def enough() -> None:
            while not _enough(self.received, count, ids):
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(enough(), timeout)
        return _ours(self.received, ids)


class SyncCollector:
    def __init__(self, bus: SyncEventBus, *models: type[Any]) -> None:
        self.bus = bus
        self.received: list[tuple[Any, EventContext]] = []
        for model in models:
            bus.subscribe(model)(self._record)

    def _record(self, event: Any, ctx: EventContext) -> None:
        self.received.append((event, ctx))

    def wait_for(
        self, count: int, timeout: float = 10.0, until: Callable[[], bool] | None = None,
        ids: Collection[str] | None = None,
    ) -> list[Any]:
        self.bus.run(until=until or (lambda: _enough(self.received, count, ids)), timeout=timeout)
        return _ours(self.received, ids)


def _enough(received: list[tuple[Any, EventContext]], count: int, ids: Collection[str] | None) -> bool:
    if ids is None:
        return len(received) >= count
    return set(ids) <= {ctx.id for _, ctx in received}


def _ours(received: list[tuple[Any, EventContext]], ids: Collection[str] | None) -> list[tuple[Any, EventContext]]:
    return received if ids is None else [(event, ctx) for event, ctx in received if ctx.id in ids]
