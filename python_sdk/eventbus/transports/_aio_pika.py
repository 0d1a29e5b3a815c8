"""aio-pika behind the transport seam: the escape hatch from the lean client.

Anyone who meets a protocol corner of the SDK's own AMQP client switches with
``BusSettings(transport="aio-pika")`` (or ``EVENTBUS_TRANSPORT=aio-pika``) and changes no other
code; the behaviour suite (``tests/transports``) holds both to the same cases, and
``bench/run.py`` measures the lean client against aio-pika.

Plain (not robust) connections: reconnecting is the bus's job above the seam, as with the lean
client, so a consumer notices a lost session and a publish its lost confirm. Needs the
``eventbus[aio-pika]`` extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._connect_errors import connection_failed
from .._exceptions import (
    ConnectionFailedError,
    PublishError,
    PublishNackedError,
    PublishTimeoutError,
    TopologyError,
    UnroutableError,
)
from .._retry import ReconnectWindow
from .._settings import BusSettings
from .._topology import LEGACY_QUEUE_WARNING, QueueSpec, describe_mismatch, without_safety_net
from ._lock import HeldLock
from ._outcomes import describe, publish_failure
from ._protocol import DeliveryCallback, Outgoing, Properties, Topology
from ._publishing import PublishingConnection

try:
    import aio_pika
    import aiormq
    from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError('the aio-pika transport needs aio-pika: pip install "eventbus[aio-pika]"') from exc

__all__ = ["AioPikaLock", "AioPikaSession", "AioPikaTransport"]

log = logging.getLogger("eventbus")

_ERRORS = (aiormq.exceptions.AMQPError, ConnectionError, OSError, RuntimeError, asyncio.TimeoutError)


async def _connect(settings: BusSettings, role: str) -> AbstractConnection:
    errors: list[tuple[str, BaseException]] = []
    name = f"{settings.service}:{role}"
    properties: dict[str, Any] = {"connection_name": name, **settings.client_properties}
    for url in settings.urls:
        try:
            return await aio_pika.connect(
                url, timeout=settings.connect_timeout, client_properties=properties, heartbeat=settings.heartbeat
            )
        except (*_ERRORS, ValueError) as exc:
            errors.append((url, exc))
    raise connection_failed(errors)


async def _publish_one(raw: Any, item: Outgoing, confirm_timeout: float) -> PublishError | None:
    """One mandatory, confirmed publish on the aiormq channel ``raw``; its outcome."""
    exchange, routing_key, properties, body = item
    try:
        result = await raw.basic_publish(
            body, exchange=exchange, routing_key=routing_key, properties=_message(properties, body).properties,
            mandatory=True, timeout=confirm_timeout,
        )
    except aiormq.exceptions.DeliveryError as exc:
        return PublishNackedError(f"broker refused {describe(properties)}: {exc}",
                                  event_type=properties.message_type, event_id=properties.message_id)
    except TimeoutError:
        return PublishTimeoutError(
            f"no confirm for {describe(properties)} within {confirm_timeout:g}s; "
            "it may or may not be stored", event_type=properties.message_type, event_id=properties.message_id,
        )
    if isinstance(result, aiormq.abc.DeliveredMessage):  # returned: mandatory and no queue bound
        return publish_failure(exchange, routing_key, properties, UnroutableError("returned"))
    return None


class AioPikaLock(HeldLock):
    """The exclusive-queue leader lock (as ``_lock.LeanLock``) on an aio-pika connection of its own
    that never reconnects: ``lost`` completes when it closes, and publishing goes through it."""

    def __init__(self, connection: AbstractConnection, settings: BusSettings) -> None:
        super().__init__(settings)
        self.connection = connection
        connection.close_callbacks.add(self._end)

    async def publish(self, batch: Sequence[Outgoing]) -> list[PublishError | None]:
        self._check_held()
        channel = await self.connection.channel(publisher_confirms=True)
        try:
            raw = await channel.get_underlay_channel()
            return [await _publish_one(raw, item, self._settings.confirm_timeout) for item in batch]
        finally:
            with contextlib.suppress(*_ERRORS):
                await channel.close()

    async def release(self) -> None:
        with contextlib.suppress(*_ERRORS):
            await self.connection.close()
        self._end()


async def _take_lock(
    settings: BusSettings, name: str, spare: AbstractConnection | None
) -> tuple[AioPikaLock | None, AbstractConnection | None]:
    """As ``_lock.take_lock``: (the lock, None), or (None, the connection to try again on)."""
    connection = spare if spare is not None and not spare.is_closed else await _connect(settings, "leader")
    try:
        channel = await connection.channel()
        try:
            await channel.declare_queue(name, exclusive=True, durable=False, auto_delete=False,
                                        arguments={"x-queue-type": "classic"})
        except aiormq.exceptions.ChannelLockedResource:
            return None, connection  # someone else holds it; the broker closed only the channel
        await channel.close()  # the lock is the connection's, not the channel's
    except BaseException:
        with contextlib.suppress(*_ERRORS):
            await connection.close()
        raise
    return AioPikaLock(connection, settings), None


def _message(properties: Properties, body: bytes) -> aio_pika.Message:
    return aio_pika.Message(
        body,
        headers=properties.headers,
        content_type=properties.content_type,
        content_encoding=properties.content_encoding,
        delivery_mode=properties.delivery_mode,
        correlation_id=properties.correlation_id,
        reply_to=properties.reply_to,
        message_id=properties.message_id,
        timestamp=properties.timestamp,
        type=properties.message_type,
        app_id=properties.app_id,
    )


async def _awaited(settle: Callable[[], Awaitable[None]]) -> None:
    """``settle()`` as a coroutine of its own: aio-pika's ack and nack return awaitables, tasks want coroutines."""
    await settle()


async def _on_throwaway_channel(connection: AbstractConnection, work: Callable[[Any], Awaitable[None]]) -> None:
    """Run declarations on a channel of their own; a refusal closes only it and becomes a TopologyError."""
    channel = await connection.channel(publisher_confirms=False)
    try:
        await work(await channel.get_underlay_channel())
    except aiormq.exceptions.ChannelPreconditionFailed as exc:
        raise describe_mismatch(str(exc)) or TopologyError(str(exc)) from None
    except aiormq.exceptions.ChannelClosed as exc:
        raise TopologyError(f"the broker refused a declaration: {exc}") from None
    finally:
        if not channel.is_closed:
            with contextlib.suppress(*_ERRORS):
                await channel.close()


async def _declare_queues(connection: AbstractConnection, queues: Sequence[QueueSpec]) -> None:
    async def declare(raw: Any) -> None:
        for queue in queues:
            await raw.queue_declare(queue.name, durable=True, arguments=queue.arguments)

    await _on_throwaway_channel(connection, declare)


async def _declare(connection: AbstractConnection, topology: Topology) -> None:
    async def exchanges(raw: Any) -> None:
        for exchange in topology.exchanges:
            await raw.exchange_declare(exchange.name, exchange_type=exchange.type, durable=True,
                                       arguments=exchange.arguments or None)

    async def bindings(raw: Any) -> None:
        for binding in topology.bindings:
            if binding.to_exchange:
                await raw.exchange_bind(binding.destination, binding.source, binding.routing_key)
            else:
                await raw.queue_bind(binding.destination, binding.source, binding.routing_key)

    if topology.exchanges:
        await _on_throwaway_channel(connection, exchanges)
    if topology.queues:
        try:
            await _declare_queues(connection, topology.queues)
        except TopologyError:
            for queue in topology.queues:  # one by one, accepting a queue made without the safety net
                try:
                    await _declare_queues(connection, [queue])
                except TopologyError:
                    legacy = without_safety_net(queue)
                    if legacy is None:
                        raise
                    await _declare_queues(connection, [legacy])
                    log.warning(LEGACY_QUEUE_WARNING, queue.name)
    if topology.bindings:
        await _on_throwaway_channel(connection, bindings)


class AioPikaTransport(PublishingConnection[AbstractConnection, AbstractChannel]):
    """One aio-pika connection with a confirm channel for publishing; sessions on their own."""

    name = "aio-pika"

    _connection_errors = _ERRORS

    async def _connect(self) -> AbstractConnection:
        return await _connect(self._settings, "publish")

    async def _take_lock(
        self, name: str, kept: AbstractConnection | None
    ) -> tuple[AioPikaLock | None, AbstractConnection | None]:
        """An exclusive queue on an aio-pika connection of its own."""
        return await _take_lock(self._settings, name, kept)

    async def _confirm_channel(self, connection: AbstractConnection) -> AbstractChannel:
        return await connection.channel(publisher_confirms=True)

    async def _declare_on(self, connection: AbstractConnection, topology: Topology) -> None:
        await _declare(connection, topology)

    async def _publish_one(self, raw: Any, item: Outgoing) -> PublishError | None:
        return await _publish_one(raw, item, self._settings.confirm_timeout)

    async def publish(self, batch: Sequence[Outgoing]) -> list[PublishError | None]:
        """Publish every item (mandatory, confirmed) concurrently; lost ones again on a new connection
        within ``reconnect_window`` (at-least-once, as with the lean client)."""
        outcomes: list[PublishError | None] = [None] * len(batch)
        todo = list(range(len(batch)))
        window: ReconnectWindow | None = None
        while todo:
            try:
                raw = await (await self._ready()).get_underlay_channel()
            except ConnectionFailedError:
                if not self._ever_connected:
                    raise
                failure: BaseException = ConnectionFailedError("no broker answered")
                results: list[Any] = [failure] * len(todo)
            else:
                results = await asyncio.gather(*(self._publish_one(raw, batch[i]) for i in todo),
                                                return_exceptions=True)
            lost = []
            for index, result in zip(todo, results, strict=True):
                if isinstance(result, PublishError | None):
                    outcomes[index] = result
                else:
                    lost.append(index)
                    failure = result
            if not lost:
                return outcomes
            self._forget()
            window = await self._wait_to_retry(window, len(lost), failure)
            if window is None:
                for index in lost:
                    exchange, routing_key, properties, _ = batch[index]
                    outcomes[index] = publish_failure(exchange, routing_key, properties, failure)
                return outcomes
            todo = lost
        return outcomes

    async def consume(
        self, topologies: Sequence[Topology], queues: Mapping[str, DeliveryCallback], prefetch: int
    ) -> AioPikaSession:
        connection = await _connect(self._settings, "consume")
        try:
            for topology in topologies:
                await _declare(connection, topology)
            channel = await connection.channel(publisher_confirms=False)
            await channel.set_qos(prefetch_count=prefetch)
            session = AioPikaSession(connection, channel)
            for name, callback in queues.items():
                queue = await channel.get_queue(name, ensure=False)
                session.tags.append((queue, await queue.consume(session.receiver(callback))))
        except BaseException:
            with contextlib.suppress(*_ERRORS):
                await connection.close()
            raise
        return session


@dataclass(slots=True, eq=False)
class AioPikaDelivery:
    """An aio-pika delivery as the bus reads it (the seam's ``Incoming``)."""

    message: AbstractIncomingMessage
    properties: Properties
    session: AioPikaSession

    @property
    def body(self) -> bytes:
        return self.message.body

    @property
    def exchange(self) -> str:
        return self.message.exchange or ""

    @property
    def routing_key(self) -> str:
        return self.message.routing_key or ""

    @property
    def redelivered(self) -> bool:
        return bool(self.message.redelivered)


def _properties(message: AbstractIncomingMessage) -> Properties:
    return Properties(
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        headers=dict(message.headers) if message.headers else None,
        delivery_mode=int(message.delivery_mode) if message.delivery_mode is not None else None,
        correlation_id=message.correlation_id,
        reply_to=message.reply_to,
        message_id=message.message_id,
        timestamp=message.timestamp,
        message_type=message.type,
        app_id=message.app_id,
    )


class AioPikaSession:
    """One aio-pika consuming connection and channel (the seam's ``Session``)."""

    def __init__(self, connection: AbstractConnection, channel: AbstractChannel) -> None:
        self.connection = connection
        self.channel = channel
        self.tags: list[tuple[Any, str]] = []
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._unacked: set[AioPikaDelivery] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        connection.close_callbacks.add(self._on_closed)
        channel.close_callbacks.add(self._on_closed)

    def _on_closed(self, *_: Any) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def receiver(self, callback: DeliveryCallback) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
        async def on_message(message: AbstractIncomingMessage) -> None:
            delivery = AioPikaDelivery(message, _properties(message), self)
            self._unacked.add(delivery)
            callback(delivery)

        return on_message

    def owns(self, delivery: Any) -> bool:
        return getattr(delivery, "session", None) is self

    def _send(self, delivery: Any, settle: Callable[[], Awaitable[None]]) -> None:
        if not self.owns(delivery) or delivery not in self._unacked:
            return
        self._unacked.discard(delivery)
        task = asyncio.get_running_loop().create_task(_awaited(settle))
        self._tasks.add(task)
        task.add_done_callback(self._settled)

    def _settled(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("could not settle a delivery (%s); the broker redelivers it", task.exception())

    def ack(self, delivery: Any) -> None:
        self._send(delivery, delivery.message.ack)

    def nack(self, delivery: Any, *, requeue: bool = True) -> None:
        self._send(delivery, lambda: delivery.message.nack(requeue=requeue))

    async def cancel(self) -> None:
        for queue, tag in self.tags:
            with contextlib.suppress(*_ERRORS):
                await queue.cancel(tag)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks))  # acks already decided go out first
        for delivery in list(self._unacked):
            self.nack(delivery, requeue=True)
        if self._tasks:
            await asyncio.wait(set(self._tasks))
        if not self.connection.is_closed:
            with contextlib.suppress(*_ERRORS):
                await self.connection.close()
