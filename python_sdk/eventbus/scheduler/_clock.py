"""The scheduler's time: the wall clock, or the clock of the broker it runs on.

On RabbitMQ the scheduler reads ``datetime.now(UTC)`` and sleeps on the event loop. On the
in-memory broker of ``eventbus.testing`` it uses the broker's ``MemoryClock`` instead (a
transport that brings its own time has a ``clock`` with ``utcnow`` and ``sleep``), so a test
drives a cron schedule with ``await broker.clock.advance(60)`` and no real waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock", "clock_for"]


@runtime_checkable
class Clock(Protocol):
    def utcnow(self) -> datetime: ...

    async def sleep(self, seconds: float, interrupt: asyncio.Future[Any] | None = None) -> None:
        """Return after ``seconds``, or as soon as ``interrupt`` is done."""
        ...


class SystemClock:
    """Real time (``now`` replaces the reading, e.g. a fixed time in a test)."""

    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        self._now = now or (lambda: datetime.now(UTC))

    def utcnow(self) -> datetime:
        return self._now()

    async def sleep(self, seconds: float, interrupt: asyncio.Future[Any] | None = None) -> None:
        if interrupt is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(interrupt), timeout=seconds)


def clock_for(clock: Clock | Callable[[], datetime] | None, transport: object) -> Clock:
    """``clock`` if it is one; else real time read by ``clock``; else the transport's own clock
    (the memory broker's), else real time."""
    if isinstance(clock, Clock):
        return clock
    if clock is not None:
        return SystemClock(clock)
    own = getattr(transport, "clock", None)
    return own if isinstance(own, Clock) else SystemClock()
