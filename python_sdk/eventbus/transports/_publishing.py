"""The publishing connection every AMQP transport keeps: one connection, one confirm channel,
reopened when it breaks, the topology declared on it, and the reconnect window of a publish
whose confirm was lost. A transport supplies how to connect, open a confirm channel and declare.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Generic, TypeVar

from .._retry import ReconnectWindow
from .._settings import BusSettings
from ._declared import Declarations
from ._protocol import Lock, Topology

__all__ = ["PublishingConnection"]

log = logging.getLogger("eventbus")

ConnectionT = TypeVar("ConnectionT")
ChannelT = TypeVar("ChannelT")


class PublishingConnection(Generic[ConnectionT, ChannelT]):
    """The shared half of a transport: its publishing connection and what was declared on it."""

    def __init__(self, settings: BusSettings) -> None:
        self._settings = settings
        self._connection: Any = None
        self._channel: Any = None
        self._declared = Declarations()
        self._lock = asyncio.Lock()
        self._ever_connected = False
        self._lock_spares: dict[str, ConnectionT] = {}
        """A follower's connection per lock name, kept for its next attempt."""

    # -- what a transport supplies ------------------------------------------------------------------

    async def _connect(self) -> ConnectionT:
        raise NotImplementedError

    async def _confirm_channel(self, connection: ConnectionT) -> ChannelT:
        raise NotImplementedError

    async def _declare_on(self, connection: ConnectionT, topology: Topology) -> None:
        raise NotImplementedError

    _connection_errors: tuple[type[BaseException], ...] = (ConnectionError, OSError, TimeoutError)
    """What a lost connection raises with this client."""

    async def _take_lock(self, name: str, kept: ConnectionT | None) -> tuple[Lock | None, ConnectionT | None]:
        """(the lock, None), or (None, the connection to try again on): an exclusive queue on a
        connection of its own (``kept``, a follower's connection from its last attempt, if any)."""
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------------

    async def _ready(self) -> ChannelT:
        channel = self._channel
        if channel is not None and not channel.is_closed and not self._lock.locked():
            return channel  # type: ignore[no-any-return]
        # While a connection is being opened, callers queue on the lock (first come, first
        # served), so publishes leave in the order they were made, e.g. parked copies in the
        # order their deliveries arrived.
        async with self._lock:
            if self._channel is None or self._channel.is_closed:
                if self._connection is None or self._connection.is_closed:
                    self._declared.clear()
                    self._connection = await self._connect()
                    self._ever_connected = True
                self._channel = await self._confirm_channel(self._connection)
            return self._channel  # type: ignore[no-any-return]

    def _forget(self, broken: ConnectionT | None = None) -> None:
        """Drop a broken connection; the next publish opens a new one. With ``broken``, only if
        that is still the current one (a concurrent batch may have reconnected already)."""
        if broken is not None and broken is not self._connection:
            return
        connection, self._connection, self._channel = self._connection, None, None
        self._declared.clear()
        if connection is not None and not connection.is_closed:
            task = asyncio.get_running_loop().create_task(connection.close())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def declare(self, topology: Topology) -> None:
        """Declare ``topology`` unless done on this connection (a new connection clears the record;
        a dying one is the publish's to notice, inside its reconnect window)."""
        if topology.name in self._declared:
            return
        await self._ready()  # a new connection forgets what was declared: open it before declaring

        async def declare() -> None:
            await self._ready()
            await self._declare_on(self._connection, topology)

        await self._declared.once(topology.name, declare)

    async def _wait_to_retry(self, window: ReconnectWindow | None, lost: int, failure: BaseException
                             ) -> ReconnectWindow | None:
        """After ``lost`` publishes lost their confirm: wait, and return the window to try again in,
        or None when ``reconnect_window`` is over (the caller reports them failed)."""
        window = window or ReconnectWindow(self._settings.reconnect_window, time.monotonic)
        wait = window.next_wait()
        if wait is None:
            return None
        log.info("publish of %d message(s) hit %s; publishing them again", lost, type(failure).__name__)
        await asyncio.sleep(wait)
        return window

    async def lock(self, name: str) -> Lock | None:
        """The seam's ``Locking``: a follower keeps one connection per lock name for its next try."""
        kept = self._lock_spares.pop(name, None)
        try:
            lock, spare = await self._take_lock(name, kept)
        except self._connection_errors:
            if kept is None:
                raise
            lock, spare = await self._take_lock(name, None)  # the kept one died meanwhile
        if spare is not None:
            self._lock_spares[name] = spare
        return lock

    async def close(self) -> None:
        """Close the publishing connection, and a follower's spare lock connections."""
        spares, self._lock_spares = self._lock_spares, {}
        for spare in spares.values():
            with contextlib.suppress(*self._connection_errors):
                await spare.close()  # type: ignore[attr-defined]
        connection, self._connection, self._channel = self._connection, None, None
        self._declared.clear()
        if connection is not None and not connection.is_closed:
            with contextlib.suppress(Exception):
                await connection.close()
