"""Run a bus's subscribers until they have seen enough, for round-trip tests.

The exchanges are shared: every queue bound to an event type gets every event of that type,
including those other tests (or other people) publish at the same time. Collectors therefore
keep only events whose CloudEvents source is the bus's own, or that ``accept`` picks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from eventbus import EventBus, EventContext, SyncEventBus


class AsyncCollector:
    """Subscribes to each given model and records (event, context) pairs."""

    def __init__(
        self, bus: EventBus, *models: type[Any], accept: Callable[[Any, EventContext], bool] | None = None
    ) -> None:
        source = bus.settings.source
        self.accept = accept or (lambda event, ctx: ctx.source == source)
        self.received: list[tuple[Any, EventContext]] = []
        self._changed = asyncio.Event()
        for model in models:
            bus.subscribe(model)(self._record)

    async def _record(self, event: Any, ctx: EventContext) -> None:
        if not self.accept(event, ctx):
            return
        self.received.append((event, ctx))
        self._changed.set()

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[Any, EventContext]]:
        async def enough() -> None:
            while len(self.received) < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(enough(), timeout)
        return self.received


class SyncCollector:
    def __init__(
        self, bus: SyncEventBus, *models: type[Any], accept: Callable[[Any, EventContext], bool] | None = None
    ) -> None:
        self.bus = bus
        source = bus.settings.source
        self.accept = accept or (lambda event, ctx: ctx.source == source)
        self.received: list[tuple[Any, EventContext]] = []
        for model in models:
            bus.subscribe(model)(self._record)

    def _record(self, event: Any, ctx: EventContext) -> None:
        if not self.accept(event, ctx):
            return
        self.received.append((event, ctx))

    def wait_for(self, count: int, timeout: float = 10.0, until: Callable[[], bool] | None = None) -> list[Any]:
        self.bus.run(until=until or (lambda: len(self.received) >= count), timeout=timeout)
        return self.received
