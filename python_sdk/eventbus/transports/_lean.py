"""The SDK's lean AMQP client (``_amqp``) behind the transport seam: the default transport.

Publishing: one connection and one confirm channel shared by concurrent publishes; a batch is
written in one socket write and waited for with one future (``_amqp.ConfirmBatch``). Failure
modes, each tested in ``tests/faults/``:

- no queue bound (mandatory returned)         → ``UnroutableError`` (never reported as success)
- negative confirm                            → ``PublishNackedError``
- no confirm within ``confirm_timeout``       → ``PublishTimeoutError``; a stalled TCP
  connection can never make a publish hang forever
- the broker blocks publishing (memory/disk alarm) that long → ``PublishBlockedError``
- the connection drops before the confirm     → reconnect and publish again, for up to
  ``reconnect_window`` seconds, then ``PublishError``. Publishing again after a lost
  confirm can store the message twice; consumers deduplicate by event id (at-least-once).

Consuming: a session is a connection of its own (RabbitMQ blocks *publishing* connections under
a memory alarm, and a consumer sharing one would stop acking), one channel, every queue on it.
Acks are batched (``_acks.AckWindow``): processed deliveries are acked once per event-loop
iteration, with ``multiple=True`` over the longest processed prefix, and always before the
channel is nacked back or closed. An ack for a delivery of a dead channel is dropped (the
broker redelivers), never sent on a new channel with a stale delivery tag.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from .._exceptions import (
    ConnectionFailedError,
    PublishBlockedError,
    PublishError,
    PublishTimeoutError,
    TopologyError,
)
from .._retry import ReconnectWindow
from ._acks import AckWindow
from ._amqp import Channel, Connection, Message, MessageNacked, MessageReturned, PublishBlocked
from ._broker import (
    CONNECTION_ERRORS,
    bind,
    connect,
    declare_exchange,
    declare_queue,
    declaring_channel,
    is_blocked,
)
from ._lock import LeanLock, take_lock
from ._outcomes import describe, publish_failure
from ._protocol import DIRECT_REPLY_TO, DeliveryCallback, Outgoing, Topology
from ._publishing import PublishingConnection

__all__ = ["LeanSession", "LeanTransport", "declare_topology"]

log = logging.getLogger("eventbus")


async def declare_topology(connection: Connection, topology: Topology) -> None:
    """Exchanges, queues, bindings on throwaway channels; queues one by one (with the legacy
    fallback of ``declare_queue``) only when declaring them together was refused."""
    if topology.exchanges:
        async with declaring_channel(connection) as channel:
            for exchange in topology.exchanges:
                await declare_exchange(channel, exchange)
    if topology.queues:
        try:
            async with declaring_channel(connection) as channel:
                for queue in topology.queues:
                    await channel.queue_declare(queue.name, durable=True, arguments=queue.arguments)
        except TopologyError:
            for queue in topology.queues:
                await declare_queue(connection, queue)
    if topology.bindings:
        async with declaring_channel(connection) as channel:
            for binding in topology.bindings:
                await bind(channel, binding)


class LeanTransport(PublishingConnection[Connection, Channel]):
    """A confirm channel, reopened when it breaks, the names declared on its connection, and
    consuming sessions on connections of their own."""

    name = "lean"
    _on_reply: DeliveryCallback | None = None
    _replying: Channel | None = None  # the channel that consumes direct reply-to
    _reply_consumer: asyncio.Future[str] | None = None  # its basic.consume

    def on_reply(self, callback: DeliveryCallback) -> None:
        """Hand every direct reply-to delivery of the publishing channel to ``callback`` (see
        ``DirectReplies``)."""
        self._on_reply = callback

    async def _replies_on(self, channel: Channel, batch: Sequence[Outgoing]) -> None:
        """Consume direct reply-to (no-ack) on ``channel`` before a request is published on it:
        the broker refuses a ``reply_to`` of the pseudo-queue from a channel that does not. Once
        per channel: concurrent requests wait for the one ``basic.consume`` (a second consumer of
        the pseudo-queue on a channel is a channel error)."""
        if self._on_reply is None:
            return
        if not any(properties.reply_to == DIRECT_REPLY_TO for _, _, properties, _ in batch):
            return
        if self._replying is not channel or self._reply_consumer is None:
            self._replying = channel
            self._reply_consumer = asyncio.ensure_future(
                channel.basic_consume(DIRECT_REPLY_TO, self._on_reply, no_ack=True))
        await asyncio.shield(self._reply_consumer)

    _connection_errors = CONNECTION_ERRORS

    async def _connect(self) -> Connection:
        return await connect(self._settings, "publish")

    async def _confirm_channel(self, connection: Connection) -> Channel:
        return await connection.channel(publisher_confirms=True)

    async def _declare_on(self, connection: Connection, topology: Topology) -> None:
        await declare_topology(connection, topology)

    async def publish(self, batch: Sequence[Outgoing]) -> list[PublishError | None]:
        """Publish ``batch`` (mandatory, confirmed) in one write; one outcome per item, in order.

        Items whose confirm was lost with the connection are published again on a new one for
        up to ``reconnect_window`` seconds (at-least-once: the broker may then hold two copies,
        which consumers drop by event id); so are nacked items, on the same connection (a nack
        is transient on a cluster: a quorum queue whose leader was lost nacks until another node
        leads it). ``ConnectionFailedError`` is raised at once when no broker was ever reached.
        """
        items = batch
        outcomes: list[PublishError | None] = [None] * len(items)
        todo = list(range(len(items)))
        window: ReconnectWindow | None = None
        while todo:
            lost: list[int] = []
            nacked: dict[int, BaseException] = {}
            failure: BaseException | None = None
            connection: Connection | None = None
            try:
                channel = await self._ready()
                connection = channel.connection
                await self._replies_on(channel, [items[i] for i in todo])
                await connection.writable()
                sent = channel.publish([items[i] for i in todo])
            except ConnectionFailedError as exc:
                if not self._ever_connected:
                    raise  # never reached a broker: say so at once
                window = await self._wait_to_retry(window, len(todo), exc)
                if window is None:
                    raise
                continue
            except CONNECTION_ERRORS as exc:
                lost, failure = todo, exc
            else:
                try:
                    async with asyncio.timeout(self._settings.confirm_timeout):
                        await sent.done
                except TimeoutError:
                    self._timed_out(connection, items, todo, sent.unsettled(), outcomes)
                for position, index in enumerate(todo):
                    result = sent.results[position]
                    if result is None or outcomes[index] is not None:
                        continue
                    if isinstance(result, MessageReturned | PublishBlocked):
                        exchange, routing_key, properties, _ = items[index]
                        outcomes[index] = publish_failure(exchange, routing_key, properties, result)
                    elif isinstance(result, MessageNacked):
                        nacked[index] = result
                        failure = failure or result
                    elif isinstance(result, BaseException):
                        lost.append(index)
                        failure = result
            if not lost and not nacked:
                return outcomes
            assert failure is not None
            if lost:
                self._forget(connection)
            retry = sorted([*lost, *nacked])
            window = await self._wait_to_retry(window, len(retry), failure)
            if window is None:
                for index in retry:
                    exchange, routing_key, properties, _ = items[index]
                    outcomes[index] = publish_failure(exchange, routing_key, properties, nacked.get(index, failure))
                return outcomes
            todo = retry
        return outcomes

    def _timed_out(self, connection: Connection, items: Sequence[Outgoing], todo: list[int], unsettled: list[int],
                   outcomes: list[PublishError | None]) -> None:
        """No confirm within ``confirm_timeout``: those publishes may or may not be stored."""
        blocked = is_blocked(connection)
        self._forget(connection)
        error = PublishBlockedError if blocked else PublishTimeoutError
        cause = (
            "the broker blocked publishing (memory or disk alarm) all that time"
            if blocked
            else "it may or may not be stored"
        )
        for position in unsettled:
            index = todo[position]
            properties = items[index][2]
            outcomes[index] = error(
                f"no confirm for {describe(properties)} within {self._settings.confirm_timeout:g}s; {cause}",
                event_type=properties.message_type,
                event_id=properties.message_id,
            )

    async def _take_lock(self, name: str, kept: Connection | None) -> tuple[LeanLock | None, Connection | None]:
        """An exclusive queue on a connection of its own (``_lock``)."""
        return await take_lock(self._settings, name, kept)

    async def consume(
        self, topologies: Sequence[Topology], queues: Mapping[str, DeliveryCallback], prefetch: int
    ) -> LeanSession:
        connection = await connect(self._settings, "consume")
        try:
            for topology in topologies:
                await declare_topology(connection, topology)
            channel = await connection.channel(publisher_confirms=False)
            await channel.basic_qos(prefetch_count=prefetch)
            session = LeanSession(connection, channel)
            for queue, callback in queues.items():
                session.tags.append(await channel.basic_consume(queue, partial(session.received, callback)))
        except BaseException:
            with contextlib.suppress(*CONNECTION_ERRORS):
                await connection.close()
            raise
        return session


class LeanSession:
    """One consuming connection and channel; acks batched per event-loop iteration."""

    def __init__(self, connection: Connection, channel: Channel) -> None:
        self.connection = connection
        self.channel = channel
        self.tags: list[str] = []
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._acks = AckWindow()
        self._flush_scheduled = False
        self._cancelled = False
        channel.on_cancel = self._on_broker_cancel
        for resource in (connection, channel):
            resource.closing.add_done_callback(self._on_closed)

    def _on_closed(self, _: asyncio.Future[Any]) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def _on_broker_cancel(self, consumer_tag: str) -> None:
        """The broker cancelled a consumer (its queue was deleted): end the session; the bus opens another."""
        if not self._cancelled and not self.connection.is_closed:
            log.warning("the broker cancelled consumer %s; reconnecting", consumer_tag)
            task = asyncio.get_running_loop().create_task(self.connection.close())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def received(self, callback: DeliveryCallback, message: Message) -> None:
        """Called inside the socket read for every delivery, in delivery order."""
        self._acks.received(message.delivery_tag)
        callback(message)

    def owns(self, delivery: Any) -> bool:
        return delivery.channel is self.channel

    def ack(self, delivery: Any) -> None:
        """Mark processed; ``_flush`` sends it with the others processed in the same loop iteration."""
        if delivery.channel is not self.channel:
            return  # its channel is gone: the broker has put it back already
        self._acks.processed(delivery.delivery_tag)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def nack(self, delivery: Any, *, requeue: bool = True) -> None:
        channel = delivery.channel
        if channel is not self.channel:
            return
        self._acks.forget(delivery.delivery_tag)
        try:
            channel.basic_nack(delivery.delivery_tag, requeue=requeue)
        except CONNECTION_ERRORS as exc:
            log.debug("could not settle delivery %s (%s); the broker redelivers it", delivery.delivery_tag, exc)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._acks.pending:
            self._send_acks(self._acks.take())

    def _send_acks(self, frames: list[tuple[int, bool]]) -> None:
        if not frames or self.channel.is_closed:
            return
        try:
            self.channel.ack_many(frames)
        except CONNECTION_ERRORS as exc:
            log.debug("could not ack up to delivery %s (%s); the broker redelivers", frames[-1][0], exc)

    async def cancel(self) -> None:
        self._cancelled = True
        if not self.channel.is_closed:
            for tag in self.tags:
                with contextlib.suppress(*CONNECTION_ERRORS):
                    await self.channel.basic_cancel(tag)

    async def close(self) -> None:
        self._cancelled = True
        channel = self.channel
        if not channel.is_closed:
            self._send_acks(self._acks.take())  # processed work is acked, never requeued
            with contextlib.suppress(*CONNECTION_ERRORS):
                channel.basic_nack(0, multiple=True, requeue=True)
        if not self.connection.is_closed:
            with contextlib.suppress(*CONNECTION_ERRORS):
                await self.connection.close()
