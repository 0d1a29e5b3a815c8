"""The in-memory broker's clock: time moves only when a test says so (``MemoryClock.advance``)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol


class _Broker(Protocol):
    """What the clock needs of its broker: deliver what falls due while time moves on."""

    async def advance(self, seconds: float) -> None: ...

__all__ = ["MemoryClock"]


class MemoryClock:
    """The broker's time in seconds; it moves only when a test says so (``advance``).

    ``now`` counts seconds from ``start`` (a UTC datetime, by default 2026-01-01 00:00); code
    that reads wall-clock time and sleeps (the scheduler) uses ``utcnow()`` and ``sleep()``,
    which wake when ``advance`` passes their deadline.
    """

    def __init__(self, broker: _Broker, start: datetime = datetime(2026, 1, 1, tzinfo=UTC)) -> None:
        self._broker = broker
        self.now = 0.0
        self.start = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self.waking = 0
        """Sleepers woken by ``advance`` that have not resumed yet (the broker counts as busy)."""

    async def advance(self, seconds: float) -> None:
        """Move time forward, delivering whatever falls due on the way (delayed publishes,
        retries, sleepers), and let the handlers run after each step, as they would meanwhile."""
        await self._broker.advance(seconds)

    def utcnow(self) -> datetime:
        return self.start + timedelta(seconds=self.now)

    async def sleep(self, seconds: float, interrupt: asyncio.Future[Any] | None = None) -> None:
        """Return once the clock has moved ``seconds`` on, or ``interrupt`` is done."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (self.now + max(0.0, seconds), next(self._order), future)
        heapq.heappush(self._sleepers, entry)

        def interrupted(_: Any) -> None:
            if not future.done():
                self.waking += 1
                future.set_result(None)

        if interrupt is not None:
            interrupt.add_done_callback(interrupted)
        try:
            await future
        finally:
            if future.done() and not future.cancelled():
                self.waking -= 1
            if interrupt is not None:
                interrupt.remove_done_callback(interrupted)
            if entry in self._sleepers:
                self._sleepers.remove(entry)
                heapq.heapify(self._sleepers)

    def next_wake(self) -> float | None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    def wake(self) -> None:
        """Wake every sleeper whose time has come."""
        while self._sleepers and self._sleepers[0][0] <= self.now + 1e-9:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                self.waking += 1
                future.set_result(None)
