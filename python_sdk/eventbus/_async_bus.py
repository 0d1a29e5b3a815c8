"""The asyncio event bus on aio-pika: confirmed publishing and typed, validated consuming.

Two connections per bus, on purpose: RabbitMQ blocks *publishing* connections under a memory or
disk alarm, and a consumer that shares one would stop acking and stall. Publishing (including
parking to a DLQ) goes through the publish connection; consuming and acking through the other.

Publishing writes straight to the underlying aiormq channel with publisher confirms and
``mandatory``; concurrent publishes share the channel, so ``publish_many`` keeps a window of
them in flight and the broker confirms them in batches (``multiple``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import aio_pika
import aiormq
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustChannel, AbstractRobustConnection
from aiormq.abc import ConfirmationFrameType
from pamqp import commands as spec
from pydantic import BaseModel

from ._connect_errors import connection_failed
from ._contract import EventContract, contract_for
from ._dispatch import Delivery, QueueDispatcher, Ready, Subscription, failure_reason, handler_arity
from ._exceptions import (
    PublishError,
    PublishNackedError,
    PublishTimeoutError,
    TopologyError,
    UnroutableError,
)
from ._outgoing import OutgoingMessage, build_outgoing
from ._parking import ParkReason, park_headers
from ._settings import BusSettings
from ._topology import QueueSpec, consumer_queue_name, describe_mismatch, queue_specs

__all__ = ["EventBus"]

log = logging.getLogger("eventbus")

ModelT = TypeVar("ModelT", bound=BaseModel)
Handler = Callable[..., Any]


def _properties(message: OutgoingMessage) -> spec.Basic.Properties:
    return spec.Basic.Properties(
        content_type=message.content_type,
        delivery_mode=message.delivery_mode,
        message_id=message.message_id,
        message_type=message.event_type,
        timestamp=message.timestamp,
        app_id=message.app_id,
        headers=message.headers,
    )


async def _connect(settings: BusSettings, role: str) -> AbstractRobustConnection:
    """Open a robust connection to the first broker URL that answers."""
    errors: list[tuple[str, BaseException]] = []
    for url in settings.urls:
        try:
            return await aio_pika.connect_robust(
                url,
                timeout=settings.connect_timeout,
                heartbeat=settings.heartbeat,
                client_properties={"connection_name": f"{settings.service}:{role}", **settings.client_properties},
            )
        except (TimeoutError, OSError, aiormq.exceptions.AMQPError) as exc:
            errors.append((url, exc))
    raise connection_failed(errors)


class _Publisher:
    """A confirm channel and the exchanges already declared on it."""

    def __init__(self, settings: BusSettings) -> None:
        self._settings = settings
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._declared: set[str] = set()
        self._lock = asyncio.Lock()

    async def _ready(self) -> aiormq.abc.AbstractChannel:
        if self._channel is None or self._channel.is_closed:
            async with self._lock:
                if self._connection is None:
                    self._connection = await _connect(self._settings, "publish")
                if self._channel is None or self._channel.is_closed:
                    self._channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        assert self._channel is not None
        return await self._channel.get_underlay_channel()

    async def ensure_exchange(self, name: str) -> None:
        if name in self._declared or not name:
            return
        channel = await self._ready()
        try:
            await channel.exchange_declare(exchange=name, exchange_type="topic", durable=True)
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            raise describe_mismatch(str(exc)) or TopologyError(str(exc)) from None
        self._declared.add(name)

    async def send(
        self, message: OutgoingMessage, *, exchange: str | None = None, routing_key: str | None = None
    ) -> None:
        target = message.exchange if exchange is None else exchange
        await self.ensure_exchange(target)
        await self.send_raw(
            body=message.body,
            exchange=target,
            routing_key=message.routing_key if routing_key is None else routing_key,
            properties=_properties(message),
            event_type=message.event_type,
            event_id=message.message_id,
        )

    async def send_raw(
        self,
        *,
        body: bytes,
        exchange: str,
        routing_key: str,
        properties: spec.Basic.Properties,
        event_type: str | None,
        event_id: str | None,
    ) -> None:
        channel = await self._ready()
        try:
            confirmation: ConfirmationFrameType | None = await channel.basic_publish(
                body,
                exchange=exchange,
                routing_key=routing_key,
                properties=properties,
                mandatory=True,
                timeout=self._settings.confirm_timeout,
            )
        except aiormq.exceptions.PublishError:
            raise UnroutableError(
                f"{event_type or 'message'} {event_id or ''} is unroutable: no queue is bound to "
                f"exchange {exchange!r} with routing key {routing_key!r}",
                event_type=event_type,
                event_id=event_id,
            ) from None
        except aiormq.exceptions.DeliveryError as exc:
            raise PublishNackedError(
                f"broker refused {event_type or 'message'} {event_id or ''}: {exc.frame!r}",
                event_type=event_type,
                event_id=event_id,
            ) from None
        except TimeoutError:
            raise PublishTimeoutError(
                f"no confirm for {event_type or 'message'} {event_id or ''} within "
                f"{self._settings.confirm_timeout:g}s; it may or may not be stored",
                event_type=event_type,
                event_id=event_id,
            ) from None
        except (aiormq.exceptions.AMQPError, ConnectionError, RuntimeError) as exc:
            raise PublishError(
                f"publish of {event_type or 'message'} {event_id or ''} failed: {type(exc).__name__}: {exc}",
                event_type=event_type,
                event_id=event_id,
            ) from exc
        if confirmation is not None and not isinstance(confirmation, spec.Basic.Ack):
            raise PublishNackedError(
                f"broker did not ack {event_type or 'message'} {event_id or ''}: {confirmation!r}",
                event_type=event_type,
                event_id=event_id,
            )

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
        self._connection = None
        self._channel = None
        self._declared.clear()


class EventBus:
    """Publish typed events and run typed handlers for one service.

    ``async with EventBus(settings) as bus`` opens the publish connection lazily on first use;
    ``await bus.start()`` declares the queues of every ``@bus.subscribe`` handler and starts
    consuming; ``await bus.stop()`` stops taking deliveries, lets in-flight handlers finish
    (up to ``grace``), and closes.
    """

    def __init__(self, settings: BusSettings) -> None:
        self.settings = settings
        self._publisher = _Publisher(settings)
        self._subscriptions: list[Subscription] = []
        self._consumer_connection: AbstractRobustConnection | None = None
        self._consumer_channel: AbstractRobustChannel | None = None
        self._consumer_tags: list[tuple[aio_pika.abc.AbstractQueue, str]] = []
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._stopped = asyncio.Event()

    @classmethod
    def from_env(cls, service: str, **overrides: Any) -> EventBus:
        """A bus for ``service`` configured by ``EVENTBUS_URL`` (see ``BusSettings.from_env``)."""
        return cls(BusSettings.from_env(service, **overrides))

    async def __aenter__(self) -> EventBus:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- publishing ---------------------------------------------------------------------------

    def _outgoing(
        self,
        event: BaseModel,
        subject: str | None,
        event_id: str | None,
        time: datetime | None,
        headers: dict[str, Any] | None,
    ) -> OutgoingMessage:
        return build_outgoing(
            event, source=self.settings.source, subject=subject, event_id=event_id, time=time, headers=headers
        )

    async def publish(
        self,
        event: BaseModel,
        *,
        subject: str | None = None,
        event_id: str | None = None,
        time: datetime | None = None,
        headers: dict[str, Any] | None = None,
    ) -> str:
        """Validate, publish and wait for the broker's confirm; returns the event id.

        Raises ``EventValidationError`` before sending anything when the event breaks its
        contract, ``UnroutableError`` when no queue is bound for it, and another
        ``PublishError`` when the broker does not confirm it in time.
        """
        message = self._outgoing(event, subject, event_id, time, headers)
        await self._publisher.send(message)
        return message.message_id

    async def publish_many(self, events: Iterable[BaseModel], *, subject: str | None = None) -> list[str]:
        """Publish a batch with up to ``settings.publish_window`` confirms outstanding at once.

        Every event is validated before the first is sent. All events are attempted; if any
        fails, the first error is raised after the rest have settled, and its ``event_id``
        says which one (the others that returned no error are confirmed).
        """
        messages = [self._outgoing(e, subject, None, None, None) for e in events]
        for exchange in {m.exchange for m in messages}:
            await self._publisher.ensure_exchange(exchange)
        window = asyncio.Semaphore(self.settings.publish_window)

        async def one(message: OutgoingMessage) -> None:
            async with window:
                await self._publisher.send(message)

        results = await asyncio.gather(*(one(m) for m in messages), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return [m.message_id for m in messages]

    async def declare_exchanges(self, contracts: Iterable[EventContract[Any]]) -> list[str]:
        """Declare the topic exchange of every contract (idempotent); returns their names."""
        names = sorted({c.exchange for c in contracts})
        for name in names:
            await self._publisher.ensure_exchange(name)
        return names

    # -- consuming ----------------------------------------------------------------------------

    def subscribe(
        self,
        model: type[ModelT],
        *,
        queue: str | None = None,
        binding_keys: Sequence[str] | None = None,
    ) -> Callable[[Handler], Handler]:
        """Register ``handler(event, context)`` (async, or sync to run in a thread) for ``model``.

        The queue defaults to ``<service>.<event type>``, a quorum queue bound to the
        contract's exchange with the event type as routing key.
        """
        contract = contract_for(model)

        def register(handler: Handler) -> Handler:
            wants_context = handler_arity(handler)
            if not inspect.iscoroutinefunction(handler):
                sync_handler = handler

                async def in_thread(*args: Any) -> Any:
                    return await asyncio.to_thread(sync_handler, *args)

                target: Handler = in_thread
            else:
                target = handler
            self._subscriptions.append(
                Subscription(
                    contract=contract,
                    handler=target,
                    queue=queue or consumer_queue_name(self.settings.service, contract.type),
                    binding_keys=tuple(binding_keys or (contract.routing_key,)),
                    wants_context=wants_context,
                )
            )
            return handler

        return register

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self._subscriptions)

    async def _declare_queue(self, channel: AbstractRobustChannel, spec_: QueueSpec) -> aio_pika.abc.AbstractQueue:
        try:
            return await channel.declare_queue(spec_.name, durable=True, arguments=spec_.arguments)
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            raise describe_mismatch(str(exc)) or TopologyError(str(exc)) from None

    async def start(self) -> None:
        """Declare exchanges, queues, DLQs and bindings, then start consuming (idempotent declares)."""
        if not self._subscriptions:
            return
        self._stopped.clear()
        self._consumer_connection = await _connect(self.settings, "consume")
        channel = await self._consumer_connection.channel()
        assert isinstance(channel, AbstractRobustChannel)
        self._consumer_channel = channel
        await channel.set_qos(prefetch_count=self.settings.prefetch)
        by_queue: dict[str, list[Subscription]] = {}
        for subscription in self._subscriptions:
            by_queue.setdefault(subscription.queue, []).append(subscription)
        for queue_name, subscriptions in by_queue.items():
            main, dead_letters = queue_specs(queue_name, self.settings.queue_type)
            for subscription in subscriptions:
                await self._publisher.ensure_exchange(subscription.contract.exchange)
            queue = await self._declare_queue(channel, main)
            await self._declare_queue(channel, dead_letters)
            for subscription in subscriptions:
                for key in subscription.binding_keys:
                    await queue.bind(subscription.contract.exchange, routing_key=key)
            dispatcher = QueueDispatcher(queue_name, subscriptions)
            tag = await queue.consume(self._consumer_callback(dispatcher), no_ack=False)
            self._consumer_tags.append((queue, tag))
            log.info("consuming %s (%s)", queue_name, ", ".join(s.contract.type for s in subscriptions))

    def _consumer_callback(self, dispatcher: QueueDispatcher) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
        async def on_message(message: AbstractIncomingMessage) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._in_flight.add(task)
            try:
                await self._handle(dispatcher, message)
            finally:
                if task is not None:
                    self._in_flight.discard(task)

        return on_message

    async def _handle(self, dispatcher: QueueDispatcher, message: AbstractIncomingMessage) -> None:
        delivery = Delivery(
            body=message.body,
            headers=message.headers,
            content_type=message.content_type,
            exchange=message.exchange or "",
            routing_key=message.routing_key or "",
            redelivered=bool(message.redelivered),
        )
        outcome = dispatcher.prepare(delivery)
        if isinstance(outcome, Ready):
            try:
                await outcome.call()
            except asyncio.CancelledError:
                # Shutdown: leave the message unacked; the broker requeues it when we close.
                raise
            except Exception as exc:
                log.warning("handler for %s %s failed: %r", outcome.context.type, outcome.context.id, exc)
                await self._park(dispatcher.queue, message, delivery, failure_reason(exc), outcome.context.attempt)
                return
            await message.ack()
            return
        log.warning("parking delivery on %s: %s: %s", dispatcher.queue, outcome.code, outcome.error)
        await self._park(dispatcher.queue, message, delivery, outcome, 1)

    async def _park(
        self,
        queue: str,
        message: AbstractIncomingMessage,
        delivery: Delivery,
        reason: ParkReason,
        attempt: int,
    ) -> None:
        """Copy the delivery to ``<queue>.dlq`` (confirmed), then ack the original; never lose it."""
        headers = park_headers(
            delivery.headers,
            reason,
            exchange=delivery.exchange,
            routing_key=delivery.routing_key,
            queue=queue,
            attempt=attempt,
        )
        properties = spec.Basic.Properties(
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            delivery_mode=2,
            message_id=message.message_id,
            message_type=message.type,
            timestamp=message.timestamp,
            app_id=message.app_id,
            correlation_id=message.correlation_id,
            headers=headers,
        )
        try:
            await self._publisher.send_raw(
                body=delivery.body,
                exchange="",
                routing_key=f"{queue}.dlq",
                properties=properties,
                event_type=message.type,
                event_id=message.message_id,
            )
        except PublishError as exc:
            log.error("could not park a delivery from %s (%s); requeueing it", queue, exc)
            await message.nack(requeue=True)
            return
        await message.ack()

    async def run(self) -> None:
        """Start consuming and wait until ``stop()`` is called."""
        await self.start()
        await self._stopped.wait()

    async def stop(self, grace: float = 30.0) -> None:
        """Stop taking deliveries, give in-flight handlers ``grace`` seconds, then close.

        Handlers still running after the grace period are cancelled; their deliveries stay
        unacked and the broker requeues them when the channel closes, so nothing is lost.
        """
        for queue, tag in self._consumer_tags:
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
        self._consumer_tags.clear()
        if self._in_flight:
            _, pending = await asyncio.wait(set(self._in_flight), timeout=grace)
            for task in pending:
                task.cancel()
        if self._consumer_connection is not None:
            await self._consumer_connection.close()
            self._consumer_connection = None
            self._consumer_channel = None
        self._stopped.set()

    async def close(self) -> None:
        """Stop consuming (if started) and close both connections."""
        await self.stop()
        await self._publisher.close()
