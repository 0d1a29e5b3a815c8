"""The blocking event bus on pika, for scripts, CLIs and sync web apps.

A thin shell over the same sans-I/O pieces as the async bus (envelope, contracts, dispatch,
parking, topology), so both APIs write and accept exactly the same messages.
"""

from __future__ import annotations

import logging
import time as _time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel
from pydantic import BaseModel

from ._connect_errors import connection_failed
from ._contract import EventContract, contract_for
from ._dispatch import Delivery, QueueDispatcher, Ready, Subscription, failure_reason, handler_arity
from ._exceptions import (
    PublishError,
    PublishNackedError,
    TopologyError,
    UnroutableError,
)
from ._outgoing import OutgoingMessage, build_outgoing
from ._parking import ParkReason, park_headers
from ._settings import BusSettings
from ._topology import QueueSpec, consumer_queue_name, describe_mismatch, queue_specs

__all__ = ["SyncEventBus", "TappedMessage"]

log = logging.getLogger("eventbus")
ModelT = TypeVar("ModelT", bound=BaseModel)
Handler = Callable[..., Any]


def _connect(settings: BusSettings, role: str) -> pika.BlockingConnection:
    errors: list[tuple[str, BaseException]] = []
    for url in settings.urls:
        params = pika.URLParameters(url)
        params.heartbeat = settings.heartbeat
        params.blocked_connection_timeout = settings.confirm_timeout
        params.socket_timeout = settings.connect_timeout
        params.client_properties = {"connection_name": f"{settings.service}:{role}", **settings.client_properties}
        try:
            return pika.BlockingConnection(params)
        except pika.exceptions.AMQPError as exc:
            errors.append((url, exc))
    raise connection_failed(errors)


def _pika_properties(message: OutgoingMessage) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type=message.content_type,
        delivery_mode=message.delivery_mode,
        message_id=message.message_id,
        type=message.event_type,
        timestamp=int(message.timestamp.timestamp()),
        app_id=message.app_id,
        headers=message.headers,
    )


def _translate_channel_error(exc: pika.exceptions.ChannelClosedByBroker) -> Exception:
    return describe_mismatch(exc.reply_text) or TopologyError(f"{exc.reply_code} {exc.reply_text}")


class _SyncPublisher:
    def __init__(self, settings: BusSettings) -> None:
        self._settings = settings
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._declared: set[str] = set()

    def _ready(self) -> BlockingChannel:
        if self._connection is None or self._connection.is_closed:
            self._connection = _connect(self._settings, "publish")
            self._channel = None
            self._declared.clear()
        if self._channel is None or self._channel.is_closed:
            self._channel = self._connection.channel()
            self._channel.confirm_delivery()
        return self._channel

    def ensure_exchange(self, name: str) -> None:
        if name in self._declared or not name:
            return
        try:
            self._ready().exchange_declare(exchange=name, exchange_type="topic", durable=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            raise _translate_channel_error(exc) from None
        self._declared.add(name)

    def send_raw(
        self,
        *,
        body: bytes,
        exchange: str,
        routing_key: str,
        properties: pika.BasicProperties,
        event_type: str | None,
        event_id: str | None,
    ) -> None:
        channel = self._ready()
        try:
            channel.basic_publish(exchange, routing_key, body, properties, mandatory=True)
        except pika.exceptions.UnroutableError:
            raise UnroutableError(
                f"{event_type or 'message'} {event_id or ''} is unroutable: no queue is bound to "
                f"exchange {exchange!r} with routing key {routing_key!r}",
                event_type=event_type,
                event_id=event_id,
            ) from None
        except pika.exceptions.NackError:
            raise PublishNackedError(
                f"broker refused {event_type or 'message'} {event_id or ''}",
                event_type=event_type,
                event_id=event_id,
            ) from None
        except pika.exceptions.AMQPError as exc:
            self._channel = None
            raise PublishError(
                f"publish of {event_type or 'message'} {event_id or ''} failed: {type(exc).__name__}: {exc!r}",
                event_type=event_type,
                event_id=event_id,
            ) from exc

    def send(self, message: OutgoingMessage) -> None:
        self.ensure_exchange(message.exchange)
        self.send_raw(
            body=message.body,
            exchange=message.exchange,
            routing_key=message.routing_key,
            properties=_pika_properties(message),
            event_type=message.event_type,
            event_id=message.message_id,
        )

    def close(self) -> None:
        if self._connection is not None and self._connection.is_open:
            self._connection.close()
        self._connection = None
        self._channel = None
        self._declared.clear()


@dataclass(frozen=True, slots=True)
class TappedMessage:
    """A copy of one message seen by a tap: where it was routed and its raw parts."""

    exchange: str
    routing_key: str
    headers: dict[str, Any]
    content_type: str | None
    body: bytes


class SyncEventBus:
    """Blocking twin of ``EventBus``: the same messages, the same parking, no event loop."""

    def __init__(self, settings: BusSettings) -> None:
        self.settings = settings
        self._publisher = _SyncPublisher(settings)
        self._subscriptions: list[Subscription] = []
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._stop_requested = False

    @classmethod
    def from_env(cls, service: str, **overrides: Any) -> SyncEventBus:
        return cls(BusSettings.from_env(service, **overrides))

    def __enter__(self) -> SyncEventBus:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- publishing ---------------------------------------------------------------------------

    def publish(
        self,
        event: BaseModel,
        *,
        subject: str | None = None,
        event_id: str | None = None,
        time: datetime | None = None,
        headers: dict[str, Any] | None = None,
    ) -> str:
        """Validate, publish and wait for the confirm; same errors as ``EventBus.publish``."""
        message = build_outgoing(
            event, source=self.settings.source, subject=subject, event_id=event_id, time=time, headers=headers
        )
        self._publisher.send(message)
        return message.message_id

    def publish_many(self, events: Iterable[BaseModel], *, subject: str | None = None) -> list[str]:
        return [self.publish(event, subject=subject) for event in events]

    def declare_exchanges(self, contracts: Iterable[EventContract[Any]]) -> list[str]:
        names = sorted({c.exchange for c in contracts})
        for name in names:
            self._publisher.ensure_exchange(name)
        return names

    def tap(
        self, pattern: str, exchanges: Iterable[str], *, timeout: float | None = None
    ) -> Iterator[TappedMessage]:
        """Yield a copy of every message routed to ``exchanges`` whose key matches ``pattern``.

        The tap has its own exclusive, auto-deleted queue, so it never takes messages from the
        services consuming them; it stops after ``timeout`` seconds (forever when None).
        """
        connection = _connect(self.settings, "tap")
        try:
            channel = connection.channel()
            queue = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
            for exchange in exchanges:
                channel.exchange_declare(exchange, exchange_type="topic", durable=True)
                channel.queue_bind(queue, exchange, routing_key=pattern)
            deadline = None if timeout is None else _time.monotonic() + timeout
            for method, properties, body in channel.consume(queue, auto_ack=True, inactivity_timeout=0.25):
                if deadline is not None and _time.monotonic() >= deadline:
                    return
                if method is None:
                    continue
                yield TappedMessage(
                    exchange=method.exchange,
                    routing_key=method.routing_key,
                    headers=dict(properties.headers or {}),
                    content_type=properties.content_type,
                    body=body,
                )
        finally:
            if connection.is_open:
                connection.close()

    # -- consuming ----------------------------------------------------------------------------

    def subscribe(
        self,
        model: type[ModelT],
        *,
        queue: str | None = None,
        binding_keys: Sequence[str] | None = None,
    ) -> Callable[[Handler], Handler]:
        contract = contract_for(model)

        def register(handler: Handler) -> Handler:
            self._subscriptions.append(
                Subscription(
                    contract=contract,
                    handler=handler,
                    queue=queue or consumer_queue_name(self.settings.service, contract.type),
                    binding_keys=tuple(binding_keys or (contract.routing_key,)),
                    wants_context=handler_arity(handler),
                )
            )
            return handler

        return register

    def _declare_queue(self, channel: BlockingChannel, spec_: QueueSpec) -> None:
        try:
            channel.queue_declare(spec_.name, durable=True, arguments=spec_.arguments)
        except pika.exceptions.ChannelClosedByBroker as exc:
            raise _translate_channel_error(exc) from None

    def start(self) -> None:
        """Declare the topology of every subscription and register the consumers."""
        self._connection = _connect(self.settings, "consume")
        channel = self._connection.channel()
        self._channel = channel
        channel.basic_qos(prefetch_count=self.settings.prefetch)
        by_queue: dict[str, list[Subscription]] = {}
        for subscription in self._subscriptions:
            by_queue.setdefault(subscription.queue, []).append(subscription)
        for queue_name, subscriptions in by_queue.items():
            main, dead_letters = queue_specs(queue_name, self.settings.queue_type)
            for subscription in subscriptions:
                self._publisher.ensure_exchange(subscription.contract.exchange)
            self._declare_queue(channel, main)
            self._declare_queue(channel, dead_letters)
            for subscription in subscriptions:
                for key in subscription.binding_keys:
                    channel.queue_bind(queue_name, subscription.contract.exchange, routing_key=key)
            dispatcher = QueueDispatcher(queue_name, subscriptions)
            channel.basic_consume(queue_name, self._callback(dispatcher), auto_ack=False)

    def _callback(self, dispatcher: QueueDispatcher) -> Callable[..., None]:
        def on_message(
            channel: BlockingChannel,
            method: pika.spec.Basic.Deliver,
            properties: pika.BasicProperties,
            body: bytes,
        ) -> None:
            delivery = Delivery(
                body=body,
                headers=properties.headers,
                content_type=properties.content_type,
                exchange=method.exchange or "",
                routing_key=method.routing_key or "",
                redelivered=bool(method.redelivered),
            )
            outcome = dispatcher.prepare(delivery)
            if isinstance(outcome, Ready):
                try:
                    outcome.call()
                except Exception as exc:
                    log.warning("handler for %s %s failed: %r", outcome.context.type, outcome.context.id, exc)
                    reason = failure_reason(exc)
                    self._park(channel, method, properties, delivery, dispatcher.queue, reason, outcome.context.attempt)
                    return
                channel.basic_ack(method.delivery_tag)
                return
            log.warning("parking delivery on %s: %s: %s", dispatcher.queue, outcome.code, outcome.error)
            self._park(channel, method, properties, delivery, dispatcher.queue, outcome, 1)

        return on_message

    def _park(
        self,
        channel: BlockingChannel,
        method: pika.spec.Basic.Deliver,
        properties: pika.BasicProperties,
        delivery: Delivery,
        queue: str,
        reason: ParkReason,
        attempt: int,
    ) -> None:
        headers = park_headers(
            delivery.headers,
            reason,
            exchange=delivery.exchange,
            routing_key=delivery.routing_key,
            queue=queue,
            attempt=attempt,
        )
        parked = pika.BasicProperties(
            content_type=properties.content_type,
            content_encoding=properties.content_encoding,
            delivery_mode=2,
            message_id=properties.message_id,
            type=properties.type,
            timestamp=properties.timestamp,
            app_id=properties.app_id,
            correlation_id=properties.correlation_id,
            headers=headers,
        )
        try:
            self._publisher.send_raw(
                body=delivery.body,
                exchange="",
                routing_key=f"{queue}.dlq",
                properties=parked,
                event_type=properties.type,
                event_id=properties.message_id,
            )
        except PublishError as exc:
            log.error("could not park a delivery from %s (%s); requeueing it", queue, exc)
            channel.basic_nack(method.delivery_tag, requeue=True)
            return
        channel.basic_ack(method.delivery_tag)

    def run(self, *, until: Callable[[], bool] | None = None, timeout: float | None = None) -> None:
        """Consume until ``stop()`` is called, ``until()`` turns true, or ``timeout`` seconds pass."""
        if self._connection is None:
            self.start()
        assert self._connection is not None
        deadline = None if timeout is None else _time.monotonic() + timeout
        self._stop_requested = False
        while not self._stop_requested:
            if until is not None and until():
                break
            if deadline is not None and _time.monotonic() >= deadline:
                break
            self._connection.process_data_events(time_limit=0.1)

    def stop(self) -> None:
        """Ask ``run()`` to return after the delivery being handled, if any."""
        self._stop_requested = True

    def close(self) -> None:
        if self._connection is not None and self._connection.is_open:
            self._connection.close()
        self._connection = None
        self._channel = None
        self._publisher.close()
