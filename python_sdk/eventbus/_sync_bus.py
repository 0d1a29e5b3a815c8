"""The blocking event bus, for scripts, CLIs and sync web apps: consumes on pika, publishes
through the async publisher on a private loop thread (``_sync_publisher``).

A thin shell over the same sans-I/O pieces as the async bus (envelope, contracts, dispatch,
retry policy, parking, delays, topology), so both APIs write and accept exactly the same
messages and retry and park them the same way.
"""

from __future__ import annotations

import logging
import time as _time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel

from ._contract import EventContract
from ._dispatch import QueueDispatcher, Subscription
from ._envelope import ordering_extensions
from ._outgoing import build_outgoing, plan_delay
from ._retry import RetryPolicy
from ._settings import BusSettings
from ._subscribing import group_by_queue, make_subscription
from ._sync_broker import connect
from ._sync_consumer import SyncConsumer
from ._sync_publisher import SyncPublisher

__all__ = ["SyncEventBus", "TappedMessage"]

log = logging.getLogger("eventbus")
ModelT = TypeVar("ModelT", bound=BaseModel)
Handler = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class TappedMessage:
    """A copy of one message seen by a tap: where it was routed and its raw parts."""

    exchange: str
    routing_key: str
    headers: dict[str, Any]
    content_type: str | None
    body: bytes


class SyncEventBus:
    """Blocking twin of ``EventBus``: the same messages, retries, delays and parking, no event loop.

    Handlers run in a pool of ``settings.prefetch`` threads while the calling thread runs the
    connection's I/O loop, so a slow handler never starves the heartbeats.
    """

    def __init__(self, settings: BusSettings) -> None:
        self.settings = settings
        self._publisher = SyncPublisher(settings)
        self._subscriptions: list[Subscription] = []
        self._consumer: SyncConsumer | None = None
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
        delay: float | timedelta | None = None,
        at: datetime | None = None,
        partition_key: str | None = None,
        sequence: int | None = None,
    ) -> str:
        """Validate, publish and wait for the confirm; same arguments and errors as ``EventBus.publish``."""
        message = build_outgoing(
            event, source=self.settings.source, subject=subject, event_id=event_id, time=time, headers=headers,
            extensions=ordering_extensions(partition_key, sequence),
        )
        self._publisher.publish_messages([message], ticks=plan_delay(delay, at), window=1)
        return message.message_id

    def publish_many(
        self, events: Iterable[BaseModel], *, subject: str | None = None, delay: float | timedelta | None = None
    ) -> list[str]:
        """Publish a batch with up to ``settings.publish_window`` confirms outstanding at once
        (pipelined, unlike pika's confirm-each); same errors as ``EventBus.publish_many``."""
        messages = [build_outgoing(e, source=self.settings.source, subject=subject) for e in events]
        self._publisher.publish_messages(messages, ticks=plan_delay(delay, None), window=self.settings.publish_window)
        return [m.message_id for m in messages]

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
        connection = connect(self.settings, "tap")
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
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        single_active_consumer: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Register ``handler(event)`` or ``handler(event, context)``; see ``EventBus.subscribe``.

        Handlers run in threads; past ``timeout`` the delivery is settled as a failed attempt
        (retried or parked) and the thread's late result is ignored, since a thread cannot be
        stopped from outside.
        """

        def register(handler: Handler) -> Handler:
            self._subscriptions.append(
                make_subscription(self.settings, model, handler, handler, queue=queue, binding_keys=binding_keys,
                                  retry=retry, timeout=timeout, single_active_consumer=single_active_consumer)
            )
            return handler

        return register

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self._subscriptions)

    def start(self) -> None:
        """Declare the topology of every subscription and register the consumers."""
        if self._consumer is not None or not self._subscriptions:
            return
        dispatchers = [
            QueueDispatcher(queue, subscriptions, self.settings.limits)
            for queue, subscriptions in group_by_queue(self._subscriptions).items()
        ]
        consumer = SyncConsumer(self.settings, self._publisher, dispatchers)
        consumer.start()
        self._consumer = consumer

    def run(self, *, until: Callable[[], bool] | None = None, timeout: float | None = None) -> None:
        """Consume until ``stop()`` (then drain and close the consumer), or until ``until()`` turns
        true or ``timeout`` seconds pass (then return, still consuming on the next ``run``)."""
        self.start()
        consumer = self._consumer
        if consumer is None:
            deadline = None if timeout is None else _time.monotonic() + timeout
            while not self._stop_requested and not (until is not None and until()):
                if deadline is not None and _time.monotonic() >= deadline:
                    return
                _time.sleep(0.05)
            return
        consumer.stop_requested = self._stop_requested
        consumer.run(until, timeout)
        if consumer.stop_requested:
            self._consumer = None
            self._stop_requested = False

    def stop(self) -> None:
        """Ask ``run()`` to stop taking deliveries, drain (``settings.shutdown_grace``) and return.

        Safe to call from a signal handler or another thread.
        """
        self._stop_requested = True
        if self._consumer is not None:
            self._consumer.stop_requested = True

    @property
    def reconnects(self) -> int:
        return self._consumer.reconnects if self._consumer is not None else 0

    def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.drain(self.settings.shutdown_grace)
        self._publisher.close()
