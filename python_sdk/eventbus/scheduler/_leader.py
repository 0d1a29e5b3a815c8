"""Leader election on the broker itself: a named lock of the transport (``Locking``).

On RabbitMQ the lock is an exclusive queue (``transports/_lock.py``): exactly one connection can
declare it, and the broker deletes it when that connection closes or its heartbeats stop, so the
lock is released when the leader exits, crashes or is cut off, and another replica takes it on
its next attempt. No database, no extra service, no clock agreement between replicas. On the
in-memory broker of ``eventbus.testing`` it is the broker's own lock with the same rules.

The lock's connection never reconnects by itself: a leader must notice that it lost the lock
(``lost``), and what it publishes goes through the lock (``publish``), so once the lock is lost,
so is the means to act as leader. A leader that was cut off may act for up to a heartbeat
interval after another one took over; whatever it does must therefore be deduplicated
downstream (the scheduler names its ticks deterministically for that reason).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from .._exceptions import ConfigurationError, ConnectionFailedError, PublishError
from .._settings import BusSettings
from ..transports import Transport, open_transport
from ..transports._broker import CONNECTION_ERRORS
from ..transports._protocol import Lock, Locking, Outgoing
from ._clock import Clock, clock_for

__all__ = ["LeaderLock"]

log = logging.getLogger("eventbus.leader")


class LeaderLock:
    """Hold the lock ``name`` to be the leader; ``lost`` is set when the hold ends.

    ``transport`` is the bus's choice (default ``settings.transport``; the memory broker under
    ``eventbus.testing.in_memory``); ``clock`` paces ``acquire`` (default: the transport's own).
    """

    def __init__(
        self,
        settings: BusSettings,
        name: str,
        *,
        transport: Transport | str | None = None,
        clock: Clock | Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.name = name
        self.lost = asyncio.Event()
        self._owns_transport = transport is None or isinstance(transport, str)
        self._transport = open_transport(transport, settings)
        if not isinstance(self._transport, Locking):
            raise ConfigurationError(f"the {self._transport.name!r} transport holds no locks (it has no lock())")
        self._locking: Locking = self._transport
        self._clock = clock_for(clock, self._transport)
        self._lock: Lock | None = None

    @property
    def held(self) -> bool:
        return self._lock is not None and not self._lock.lost.done()

    def _on_lost(self, lock: Lock, _: Any) -> None:
        if lock is not self._lock:
            return  # an earlier hold, already given up
        log.warning("leadership lost: the connection holding %s closed", self.name)
        self.lost.set()

    async def try_acquire(self) -> bool:
        """One attempt: True when this process holds the lock now (it may have held it already)."""
        if self.held:
            return True
        lock = await self._locking.lock(self.name)
        if lock is None:
            return False  # someone else leads
        self._lock = lock
        self.lost.clear()
        lock.lost.add_done_callback(partial(self._on_lost, lock))
        return True

    async def acquire(self, retry_interval: float) -> None:
        """Wait until this process holds the lock, trying every ``retry_interval`` seconds."""
        while not await self._attempt():
            await self._clock.sleep(retry_interval)

    async def _attempt(self) -> bool:
        try:
            return await self.try_acquire()
        except (ConnectionFailedError, *CONNECTION_ERRORS) as exc:
            log.warning("leader election attempt on %s failed: %s", self.name, exc)
            return False

    async def publish(self, batch: Sequence[Outgoing]) -> list[PublishError | None]:
        """Publish (mandatory, confirmed) through the connection that holds the lock."""
        lock = self._lock
        if lock is None or lock.lost.done():
            raise RuntimeError(f"not holding {self.name}")
        return await lock.publish(batch)

    async def wait_lost(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds (on the lock's clock), less when the lock is lost."""
        lock = self._lock
        if lock is None or lock.lost.done():
            return
        await self._clock.sleep(timeout, interrupt=lock.lost)

    async def release(self) -> None:
        """Give up the lock (on RabbitMQ, closing the connection deletes the queue)."""
        lock, self._lock = self._lock, None
        if lock is not None:
            with contextlib.suppress(Exception):
                await lock.release()
        if self._owns_transport:  # a follower's spare connection, when this lock made its transport
            with contextlib.suppress(Exception):
                await self._transport.close()
        self.lost.set()
