"""A leader lock on RabbitMQ itself: an exclusive queue, on a connection of its own.

RabbitMQ lets exactly one connection declare an exclusive queue of a given name; any other gets
``RESOURCE_LOCKED``. The broker deletes the queue when that connection closes or its heartbeats
stop, so the lock is released when the holder exits, crashes or is cut off.

The connection never reconnects by itself: a self-healing connection would quietly re-declare
the queue after a reconnect, and a holder must instead notice that it lost the lock. What the
holder publishes goes through that same connection, so once the lock is lost, so is the means to
act on it. The lean transport's ``lock`` (the seam's ``Locking``); ``_aio_pika.AioPikaLock`` is
the same on aio-pika.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from .._exceptions import PublishError, PublishTimeoutError
from .._settings import BusSettings
from ._amqp import ChannelClosedError, Connection
from ._broker import CONNECTION_ERRORS, connect
from ._outcomes import publish_failure
from ._protocol import Outgoing

__all__ = ["HeldLock", "LeanLock", "take_lock"]

_RESOURCE_LOCKED = 405


class HeldLock:
    """What a held lock of either AMQP transport shares: ``lost`` completes once, when the
    connection holding it ends, and from then on nothing is published through it."""

    def __init__(self, settings: BusSettings) -> None:
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._settings = settings

    def _end(self, *_: Any) -> None:
        if not self.lost.done():
            self.lost.set_result(None)

    def _check_held(self) -> None:
        if self.lost.done():
            raise ConnectionError("the lock is lost: its connection is closed")


class LeanLock(HeldLock):
    """A held exclusive queue (the seam's ``Lock``)."""

    def __init__(self, connection: Connection, settings: BusSettings) -> None:
        super().__init__(settings)
        self.connection = connection
        connection.closing.add_done_callback(self._end)

    async def publish(self, batch: Sequence[Outgoing]) -> list[PublishError | None]:
        self._check_held()
        channel = await self.connection.channel(publisher_confirms=True)
        try:
            sent = channel.publish(list(batch), mandatory=True)
            try:
                async with asyncio.timeout(self._settings.confirm_timeout):
                    await sent.done
            except TimeoutError as exc:
                raise PublishTimeoutError(f"no confirm within {self._settings.confirm_timeout:g}s") from exc
            outcomes: list[PublishError | None] = []
            for (exchange, routing_key, properties, _), result in zip(batch, sent.results, strict=True):
                if result is None:
                    outcomes.append(None)
                elif isinstance(result, BaseException) and not isinstance(result, Exception):
                    raise result
                else:
                    outcomes.append(publish_failure(exchange, routing_key, properties, result))
            return outcomes
        finally:
            with contextlib.suppress(*CONNECTION_ERRORS):
                await channel.close()

    async def release(self) -> None:
        """Give up the lock (closing the connection deletes the queue)."""
        if not self.connection.is_closed:
            with contextlib.suppress(*CONNECTION_ERRORS):
                await self.connection.close()
        self._end()


async def take_lock(
    settings: BusSettings, name: str, spare: Connection | None = None
) -> tuple[LeanLock | None, Connection | None]:
    """One attempt at the exclusive queue ``name``: (a held ``LeanLock``, None), or (None, the
    connection to try again on) when another connection holds it; a follower keeps one
    connection for its attempts rather than opening one each time. Connection errors propagate
    (the caller tries again later)."""
    connection = spare if spare is not None and not spare.is_closed else await connect(settings, "leader")
    try:
        channel = await connection.channel()
        try:
            await channel.queue_declare(
                name, exclusive=True, durable=False, auto_delete=False, arguments={"x-queue-type": "classic"}
            )
        except ChannelClosedError as exc:
            if exc.code == _RESOURCE_LOCKED:
                return None, connection  # someone else holds it; the broker closed only the channel
            raise
        await channel.close()  # the lock is the connection's, not the channel's
    except BaseException:
        with contextlib.suppress(*CONNECTION_ERRORS):
            await connection.close()
        raise
    if connection.is_closed:
        return None, None
    return LeanLock(connection, settings), None
