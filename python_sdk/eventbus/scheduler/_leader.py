"""Leader election through RabbitMQ itself: an exclusive queue is the lock.

RabbitMQ lets exactly one connection declare an exclusive queue of a given name; any other gets
``RESOURCE_LOCKED``. The broker deletes the queue when that connection closes or its heartbeats
stop, so the lock is released when the leader exits, crashes or is cut off, and another replica
takes it on its next attempt. No database, no extra service, no clock agreement between
replicas.

The lock lives on a connection of its own that never reconnects by itself: a self-healing
connection would quietly re-declare the queue after a reconnect, and a leader must instead
notice that it lost the lock.
A leader that was cut off may act for up to a heartbeat interval after another one took over;
whatever it does must therefore be deduplicated downstream (the scheduler names its ticks
deterministically for that reason).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from .._exceptions import ConnectionFailedError
from .._settings import BusSettings
from ..transports._amqp import AMQPError, Channel, ChannelClosedError, Connection
from ..transports._connect import connect_first

__all__ = ["LeaderLock"]

log = logging.getLogger("eventbus.leader")
_RESOURCE_LOCKED = 405


class LeaderLock:
    """Hold the exclusive queue ``name`` to be the leader; ``lost`` is set when the hold ends."""

    def __init__(self, settings: BusSettings, name: str) -> None:
        self.settings = settings
        self.name = name
        self.lost = asyncio.Event()
        self._connection: Connection | None = None
        self._held = False

    @property
    def held(self) -> bool:
        return self._held and self._connection is not None and not self._connection.is_closed

    def _on_close(self, connection: Connection, *_args: Any) -> None:
        if connection is not self._connection:
            return  # an earlier connection, already given up
        if self._held:
            log.warning("leadership lost: the connection holding %s closed", self.name)
        self._held = False
        self.lost.set()

    async def try_acquire(self) -> bool:
        """One attempt: True when this process holds the lock now (it may have held it already)."""
        if self.held:
            return True
        if self._connection is None or self._connection.is_closed:
            connection = self._connection = await connect_first(self.settings, "leader")
            connection.closing.add_done_callback(lambda _: self._on_close(connection))
        channel = await self._connection.channel()
        try:
            await channel.queue_declare(
                self.name, exclusive=True, durable=False, auto_delete=False, arguments={"x-queue-type": "classic"}
            )
        except ChannelClosedError as exc:
            if exc.code == _RESOURCE_LOCKED:
                return False  # someone else leads; the broker closed this channel
            raise
        await channel.close()  # the lock is the connection's, not the channel's
        self.lost.clear()
        self._held = True
        return True

    async def acquire(self, retry_interval: float) -> None:
        """Wait until this process holds the lock, trying every ``retry_interval`` seconds."""
        while not await self._attempt():
            await asyncio.sleep(retry_interval)

    async def _attempt(self) -> bool:
        try:
            return await self.try_acquire()
        except (AMQPError, ConnectionFailedError, ConnectionError, OSError) as exc:
            log.warning("leader election attempt on %s failed: %s", self.name, exc)
            self._connection = None
            return False

    async def channel(self) -> Channel:
        """A publisher-confirm channel on the lock's own connection.

        What the leader publishes goes through the connection that holds the lock, so once the
        lock is lost, so is the means to act as leader.
        """
        if not self.held:
            raise RuntimeError(f"not holding {self.name}")
        assert self._connection is not None
        return await self._connection.channel(publisher_confirms=True)

    async def release(self) -> None:
        """Give up the lock (closing the connection deletes the queue)."""
        self._held = False
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed:
            with contextlib.suppress(Exception):
                await connection.close()
        self.lost.set()
