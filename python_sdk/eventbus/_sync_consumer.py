"""The consuming side of the blocking shell: one I/O thread, handlers in a thread pool.

pika's connection is single-threaded and its heartbeats only flow while its I/O loop runs,
so a handler that blocks the loop for longer than two heartbeats gets the connection killed
(pika#93). Here the caller's thread only runs the I/O loop; handlers run in a pool of
``prefetch`` threads and hand their result back with ``add_callback_threadsafe``. Settling
(ack, retry through the delay queues, park) happens on the I/O thread, so it needs no locks
beyond the publisher's. A handler past its time limit is settled as failed on the I/O
thread; a Python thread cannot be killed, so its late result is ignored.

After a connection fault the consumer reconnects with backoff, re-declares and consumes
again; results of handlers from the lost connection are dropped (the broker redelivers).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from ._amqp import Properties
from ._delay import DELIVER_EXCHANGE, Binding, ExchangeSpec, target_binding_key
from ._dispatch import Delivery, QueueDispatcher, Ready
from ._exceptions import ConnectionFailedError, EventBusError, HandlerTimeoutError
from ._parking import ParkReason
from ._retry import ExponentialBackoff, Retry
from ._settings import BusSettings
from ._sync_broker import CONNECTION_ERRORS, apply, connect, declare_delay_topology, declare_queue
from ._sync_publisher import SyncPublisher
from ._topology import dead_letter_queue_name, queue_specs

__all__ = ["SyncConsumer"]

log = logging.getLogger("eventbus")

_RECONNECT = ExponentialBackoff(first=0.5, factor=2.0, maximum=30.0, jitter=0.5)
_TICK = 0.05  # how often the I/O loop looks at time limits and the stop flag
_SETTLE_PAUSE = 1.0  # after a failed retry/park publish, before handing the delivery back


def _copy_properties(original: pika.BasicProperties, headers: dict[str, Any]) -> Properties:
    """The properties of a retry or DLQ copy, for the (shared) publisher."""
    return Properties(
        content_type=original.content_type,
        content_encoding=original.content_encoding,
        delivery_mode=2,
        message_id=original.message_id,
        message_type=original.type,
        timestamp=original.timestamp,
        app_id=original.app_id,
        correlation_id=original.correlation_id,
        headers=headers,
    )


@dataclass(slots=True)
class _InFlight:
    dispatcher: QueueDispatcher
    ready: Ready
    delivery: Delivery
    properties: pika.BasicProperties
    deadline: float


class SyncConsumer:
    def __init__(self, settings: BusSettings, publisher: SyncPublisher, dispatchers: Sequence[QueueDispatcher]):
        self._settings = settings
        self._publisher = publisher
        self._dispatchers = list(dispatchers)
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._pool = ThreadPoolExecutor(settings.prefetch, thread_name_prefix="eventbus-handler")
        self._in_flight: dict[int, _InFlight] = {}
        self._generation = 0
        self._draining = False
        self.stop_requested = False
        self.reconnects = 0

    # -- topology and consumers ---------------------------------------------------------------

    def _open(self) -> None:
        connection = connect(self._settings, "consume")
        try:
            declare_delay_topology(connection)
            for dispatcher in self._dispatchers:
                main, dead_letters = queue_specs(dispatcher.queue, self._settings.queue_type,
                                                 self._settings.delivery_limit,
                                                 single_active_consumer=dispatcher.single_active_consumer)
                declare_queue(connection, main)
                declare_queue(connection, dead_letters)
                exchanges = sorted({s.contract.exchange for s in dispatcher.subscriptions})
                bindings = [Binding(s.contract.exchange, dispatcher.queue, key)
                            for s in dispatcher.subscriptions for key in s.binding_keys]
                bindings.append(Binding(DELIVER_EXCHANGE, dispatcher.queue, target_binding_key(dispatcher.queue)))
                apply(connection, [ExchangeSpec(name) for name in exchanges], bindings)
            channel = connection.channel()
            channel.basic_qos(prefetch_count=self._settings.prefetch)
            for dispatcher in self._dispatchers:
                channel.basic_consume(dispatcher.queue, partial(self._on_message, dispatcher))
        except BaseException:
            if connection.is_open:
                connection.close()
            raise
        self._generation += 1
        self._in_flight.clear()
        self._connection, self._channel = connection, channel

    def start(self) -> None:
        if self._connection is None:
            self._open()

    def _reconnect(self) -> None:
        self._connection, self._channel = None, None
        self._in_flight.clear()  # the broker redelivers them; late results are ignored
        failures = 0
        while not self.stop_requested:
            try:
                self._open()
            except (ConnectionFailedError, *CONNECTION_ERRORS) as exc:
                failures += 1
                delay = _RECONNECT.delay(failures)
                log.warning("reconnect attempt %d failed (%s); next in %.1fs", failures, exc, delay)
                deadline = time.monotonic() + delay
                while not self.stop_requested and time.monotonic() < deadline:
                    time.sleep(_TICK)
                continue
            self.reconnects += 1
            log.warning("reconnected after %d failed attempt(s); consuming again", failures)
            return

    # -- the I/O loop -------------------------------------------------------------------------

    def run(self, until: Callable[[], bool] | None, timeout: float | None) -> None:
        """Serve until ``stop_requested`` (then drain), ``until()`` or ``timeout`` (then return as is)."""
        self.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.stop_requested:
            if until is not None and until():
                return
            if deadline is not None and time.monotonic() >= deadline:
                return
            self._step(_TICK)
        self.drain(self._settings.shutdown_grace)

    def _step(self, seconds: float) -> None:
        try:
            if self._connection is None:
                self._reconnect()
                return
            self._connection.process_data_events(time_limit=seconds)
            self._enforce_time_limits()
        except CONNECTION_ERRORS as exc:
            if self._draining:
                raise
            log.warning("lost the consuming connection (%s); reconnecting", type(exc).__name__)
            self._reconnect()

    def _on_message(self, dispatcher: QueueDispatcher, channel: BlockingChannel, method: Any,
                    properties: pika.BasicProperties, body: bytes) -> None:
        tag = method.delivery_tag
        if self._draining:
            channel.basic_nack(tag, requeue=True)
            return
        delivery = Delivery(
            body=body, headers=properties.headers, content_type=properties.content_type,
            exchange=method.exchange or "", routing_key=method.routing_key or "", redelivered=bool(method.redelivered),
        )
        outcome = dispatcher.prepare(delivery)
        if not isinstance(outcome, Ready):
            log.warning("parking delivery on %s: %s: %s", dispatcher.queue, outcome.code, outcome.error)
            self._park(dispatcher, delivery, properties, outcome, 1, tag)
            return
        limit = outcome.subscription.timeout or self._settings.handler_timeout
        self._in_flight[tag] = _InFlight(dispatcher, outcome, delivery, properties, time.monotonic() + limit)
        future = self._pool.submit(outcome.call)
        future.add_done_callback(partial(self._finished_in_thread, self._connection, self._generation, tag))

    def _finished_in_thread(self, connection: pika.BlockingConnection, generation: int, tag: int,
                            future: Future[Any]) -> None:
        # If that connection is gone, the broker redelivers; nothing to hand back.
        with contextlib.suppress(*CONNECTION_ERRORS):
            connection.add_callback_threadsafe(partial(self._finished, generation, tag, future))

    def _finished(self, generation: int, tag: int, future: Future[Any]) -> None:
        if generation != self._generation:
            return
        item = self._in_flight.pop(tag, None)
        if item is None:
            return  # settled already (time limit)
        error = future.exception()
        if error is None:
            self._ack(tag)
        else:
            self._failed(item, error, tag)

    def _enforce_time_limits(self) -> None:
        if not self._in_flight:
            return
        now = time.monotonic()
        for tag in [t for t, item in self._in_flight.items() if item.deadline <= now]:
            item = self._in_flight.pop(tag)
            context = item.ready.context
            limit = item.ready.subscription.timeout or self._settings.handler_timeout
            log.warning("handler for %s %s ran past %gs; settling it as failed (its thread keeps running)",
                        context.type, context.id, limit)
            self._failed(item, HandlerTimeoutError(limit, event_type=context.type, event_id=context.id), tag)

    # -- settling -----------------------------------------------------------------------------

    def _ack(self, tag: int, *, requeue: bool | None = None) -> None:
        channel = self._channel
        if channel is None or not channel.is_open:
            return
        if requeue is None:
            channel.basic_ack(tag)
        else:
            channel.basic_nack(tag, requeue=requeue)

    def _failed(self, item: _InFlight, error: BaseException, tag: int) -> None:
        context = item.ready.context
        decision = item.ready.subscription.retry.decide(error, context.attempt)
        if isinstance(decision, Retry):
            log.warning("handler for %s %s failed on attempt %d (%r); retrying in %.1fs",
                        context.type, context.id, context.attempt, error, decision.delay)
            self._retry(item, error, decision, tag)
        else:
            log.warning("handler for %s %s failed on attempt %d (%r); parking it",
                        context.type, context.id, context.attempt, error)
            self._park(item.dispatcher, item.delivery, item.properties, decision, context.attempt, tag)

    def _publish_then_ack(self, publish: Callable[[], None], tag: int, what: str) -> None:
        try:
            publish()
        except EventBusError as exc:  # not confirmed, broker unreachable, or a declaration refused
            log.error("could not %s (%s); handing the delivery back to the queue", what, exc)
            time.sleep(_SETTLE_PAUSE)  # a broken publisher must not turn into a hot redelivery loop
            self._ack(tag, requeue=True)
            return
        self._ack(tag)

    def _retry(self, item: _InFlight, error: BaseException, decision: Retry, tag: int) -> None:
        ticks, headers = item.dispatcher.retry_copy(item.delivery, error, decision)
        publish = partial(self._publisher.send_delayed, body=item.delivery.body, ticks=ticks,
                          target=item.dispatcher.queue, properties=_copy_properties(item.properties, headers))
        self._publish_then_ack(publish, tag, f"schedule a retry on {item.dispatcher.queue}")

    def _park(self, dispatcher: QueueDispatcher, delivery: Delivery, properties: pika.BasicProperties,
              reason: ParkReason, attempt: int, tag: int) -> None:
        publish = partial(self._publisher.send, body=delivery.body, exchange="",
                          routing_key=dead_letter_queue_name(dispatcher.queue),
                          properties=_copy_properties(properties, dispatcher.park_copy(delivery, reason, attempt)))
        self._publish_then_ack(publish, tag, f"park a delivery from {dispatcher.queue}")

    # -- shutdown -----------------------------------------------------------------------------

    def drain(self, grace: float) -> None:
        """Stop taking deliveries, let in-flight handlers finish within ``grace``, requeue the rest."""
        connection, channel = self._connection, self._channel
        self._draining = True
        try:
            if connection is not None and connection.is_open and channel is not None and channel.is_open:
                for tag in list(channel.consumer_tags):
                    channel.basic_cancel(tag)
                deadline = time.monotonic() + grace
                while self._in_flight and time.monotonic() < deadline:
                    connection.process_data_events(time_limit=_TICK)
                    self._enforce_time_limits()
                if self._in_flight:
                    log.warning("%d handler(s) did not finish within %gs; requeueing their deliveries",
                                len(self._in_flight), grace)
                channel.basic_nack(0, multiple=True, requeue=True)
        except CONNECTION_ERRORS as exc:
            log.warning("connection lost while draining (%s); the broker requeues what was unacked", exc)
        finally:
            self._in_flight.clear()
            self._connection = self._channel = None
            if connection is not None and connection.is_open:
                with contextlib.suppress(CONNECTION_ERRORS):
                    connection.close()
            self._pool.shutdown(wait=False, cancel_futures=True)
