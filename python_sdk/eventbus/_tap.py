"""Watching the bus: a copy of every message routed to some exchanges, taken from nobody.

The tap consumes from a queue of its own (server-named, exclusive, deleted with its connection)
bound with the caller's pattern, without acknowledgements: the services consuming the same
events never notice it. ``eventbus tail`` is built on it; ``EventBus.tap`` and
``SyncEventBus.tap`` expose it.

On the in-memory broker of ``eventbus.testing`` (a bus on ``MemoryTransport``) the tap is the
same thing there: a private queue bound with the pattern, consumed and acked on arrival, deleted
at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ._delay import Binding, ExchangeSpec
from ._settings import BusSettings
from ._topology import QueueSpec
from .transports import Topology, Transport
from .transports._amqp import Message
from .transports._broker import CONNECTION_ERRORS, connect
from .transports._memory import MemoryDelivery, MemoryTransport

__all__ = ["TappedMessage", "tap"]

_POLL = 0.25  # how often a quiet tap looks at its deadline and its connection


@dataclass(frozen=True, slots=True)
class TappedMessage:
    """A copy of one message seen by a tap: where it was routed and its raw parts."""

    exchange: str
    routing_key: str
    headers: dict[str, Any]
    content_type: str | None
    body: bytes


_memory_taps = itertools.count(1)


def _tapped(message: Message | MemoryDelivery) -> TappedMessage:
    properties = message.properties
    return TappedMessage(
        exchange=message.exchange,
        routing_key=message.routing_key,
        headers=dict(properties.headers or {}),
        content_type=properties.content_type,
        body=message.body,
    )


async def _copies(
    inbox: asyncio.Queue[Any],
    timeout: float | None,
    lost: Callable[[], BaseException | None],
) -> AsyncIterator[TappedMessage]:
    """What arrives in ``inbox`` until ``timeout``; ``lost()`` (the error, or None) is asked
    whenever the tap is quiet for a moment."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    while True:
        left = _POLL if deadline is None else min(_POLL, deadline - loop.time())
        if left <= 0:
            return
        try:
            message = await asyncio.wait_for(inbox.get(), left)
        except TimeoutError:
            error = lost()
            if error is not None:
                raise error from None
            continue
        yield _tapped(message)


async def tap(
    settings: BusSettings,
    pattern: str,
    exchanges: Iterable[str],
    *,
    timeout: float | None = None,
    transport: Transport | None = None,
) -> AsyncIterator[TappedMessage]:
    """Yield a copy of every message routed to ``exchanges`` whose key matches ``pattern``, for
    ``timeout`` seconds (forever when None); a lost connection ends it with the error.
    ``transport`` is the bus's: on a ``MemoryTransport`` the tap watches that broker."""
    if isinstance(transport, MemoryTransport):
        async for seen in _tap_memory(transport, pattern, list(exchanges), timeout):
            yield seen
        return
    connection = await connect(settings, "tap")
    try:
        channel = await connection.channel()
        queue = (await channel.queue_declare("", durable=False, exclusive=True, auto_delete=True)).queue or ""
        for exchange in exchanges:
            await channel.exchange_declare(exchange, "topic", durable=True)
            await channel.queue_bind(queue, exchange, pattern)
        inbox: asyncio.Queue[Message] = asyncio.Queue()
        await channel.basic_consume(queue, inbox.put_nowait, no_ack=True, exclusive=True)

        def lost() -> BaseException | None:
            if not channel.is_closed:
                return None
            return channel.close_reason or connection.close_reason or ConnectionError("tap closed")

        async for message in _copies(inbox, timeout, lost):
            yield message
    finally:
        with contextlib.suppress(*CONNECTION_ERRORS):
            await connection.close()


async def _tap_memory(
    transport: MemoryTransport, pattern: str, exchanges: list[str], timeout: float | None
) -> AsyncIterator[TappedMessage]:
    queue = f"eventbus.tap.{next(_memory_taps)}"
    topology = Topology(
        queue,
        tuple(ExchangeSpec(exchange) for exchange in exchanges),
        (QueueSpec(queue, {"x-queue-type": "classic"}),),
        tuple(Binding(exchange, queue, pattern) for exchange in exchanges),
    )
    inbox: asyncio.Queue[MemoryDelivery] = asyncio.Queue()

    def received(delivery: MemoryDelivery) -> None:
        delivery.session.ack(delivery)  # no_ack: a copy, taken from nobody
        inbox.put_nowait(delivery)

    session = await transport.consume([topology], {queue: received}, prefetch=1 << 30)

    def lost() -> BaseException | None:
        if not session.closed.done():
            return None
        return ConnectionError("tap closed: the memory broker dropped its connection")

    try:
        async for message in _copies(inbox, timeout, lost):
            yield message
    finally:
        await session.close()
        transport.broker.delete_queue(queue)
