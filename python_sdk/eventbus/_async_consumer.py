"""The consuming side of the asyncio shell: declare, consume, settle, survive the broker, drain.

Settling a delivery (after ``QueueDispatcher.prepare`` and the handler ran):
- success → ack;
- a failure the ``RetryPolicy`` retries → a confirmed copy into the delay queues whose target
  is this queue, then ack (never held unacked while waiting);
- anything else → a confirmed copy to ``<queue>.dlq`` with its history, then ack.
If that publish fails, the delivery is nacked back to the queue: nothing is acked unsettled.

Deliveries reach ``_on_message`` straight from the socket read (``_amqp``), in order, and wait
in a deque for a worker task. Workers are long-lived and made only as needed (up to the
prefetch per queue): a worker whose handler finishes without suspending takes the next
delivery at once, and another worker is woken only when the queue still has work, so the
common case costs no task, future or callback per message while slow handlers still run
side by side.

Acks are batched (``_acks.AckWindow``): processed deliveries are acked once per event-loop
iteration, with ``multiple=True`` over the longest processed prefix, and always before the
channel is nacked back or closed on shutdown. Acks always go to the channel the delivery came
on; after a reconnect that channel is dead, the ack is dropped and the broker redelivers (at-
least-once), never acked on a new channel with a stale delivery tag. When the connection drops,
a supervisor reconnects with backoff, re-declares the topology and consumes again. ``stop``
cancels the consumers, lets in-flight handlers finish within ``grace``, cancels the rest and
nacks everything unacked back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from ._acks import AckWindow
from ._amqp import Channel, Connection, Message, Properties
from ._async_broker import CONNECTION_ERRORS, apply, connect, declare_delay_topology, declare_queue
from ._async_publisher import AsyncPublisher
from ._delay import DELIVER_EXCHANGE, Binding, ExchangeSpec, target_binding_key
from ._dispatch import Delivery, QueueDispatcher, Ready
from ._exceptions import ConnectionFailedError, EventBusError, HandlerTimeoutError, TopologyError
from ._parking import ParkReason
from ._retry import ExponentialBackoff, Retry
from ._settings import BusSettings
from ._time_limits import TimeLimits
from ._topology import dead_letter_queue_name, queue_specs

__all__ = ["AsyncConsumer"]

log = logging.getLogger("eventbus")

_RECONNECT = ExponentialBackoff(first=0.5, factor=2.0, maximum=30.0, jitter=0.5)
_SETTLE_PAUSE = 1.0  # after a failed retry/park publish, before handing the delivery back


def _copy_properties(original: Properties, headers: dict[str, Any]) -> Properties:
    return Properties(
        content_type=original.content_type,
        content_encoding=original.content_encoding,
        delivery_mode=2,
        message_id=original.message_id,
        message_type=original.message_type,
        timestamp=original.timestamp,
        app_id=original.app_id,
        correlation_id=original.correlation_id,
        headers=headers,
    )


class AsyncConsumer:
    """Consumes every queue of one bus on one channel, and keeps doing so across broker faults."""

    def __init__(self, settings: BusSettings, publisher: AsyncPublisher, dispatchers: Sequence[QueueDispatcher]):
        self._settings = settings
        self._publisher = publisher
        self._dispatchers = list(dispatchers)
        self._connection: Connection | None = None
        self._channel: Channel | None = None
        self._acks = AckWindow()
        self._flush_scheduled = False
        self._tags: list[str] = []
        self._ready: deque[tuple[QueueDispatcher, Message]] = deque()
        self._idle: list[asyncio.Future[None]] = []
        self._waking = False
        self._workers: set[asyncio.Task[None]] = set()
        self._max_workers = settings.prefetch * max(1, len(self._dispatchers))
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._limits = TimeLimits(asyncio.get_running_loop())
        self._draining = False
        self._supervisor: asyncio.Task[None] | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.reconnects = 0

    # -- topology and consumers ---------------------------------------------------------------

    async def _declare(self, connection: Connection) -> None:
        await declare_delay_topology(connection)
        for dispatcher in self._dispatchers:
            main, dead_letters = queue_specs(dispatcher.queue, self._settings.queue_type, self._settings.delivery_limit,
                                             single_active_consumer=dispatcher.single_active_consumer)
            await declare_queue(connection, main)
            await declare_queue(connection, dead_letters)
            exchanges = [ExchangeSpec(name) for name in sorted({s.contract.exchange for s in dispatcher.subscriptions})]
            bindings = [
                Binding(s.contract.exchange, dispatcher.queue, key)
                for s in dispatcher.subscriptions
                for key in s.binding_keys
            ]
            bindings.append(Binding(DELIVER_EXCHANGE, dispatcher.queue, target_binding_key(dispatcher.queue)))
            await apply(connection, exchanges, bindings)

    async def _open(self) -> None:
        connection = await connect(self._settings, "consume")
        try:
            await self._declare(connection)
            channel = await connection.channel(publisher_confirms=False)
            await channel.basic_qos(prefetch_count=self._settings.prefetch)
            channel.on_cancel = self._on_broker_cancel
            self._acks = AckWindow()
            self._channel = channel  # deliveries can arrive before basic_consume returns
            tags = []
            for dispatcher in self._dispatchers:
                tags.append(await channel.basic_consume(dispatcher.queue, partial(self._on_message, dispatcher)))
                types = ", ".join(s.contract.type for s in dispatcher.subscriptions)
                log.info("consuming %s (%s)", dispatcher.queue, types)
        except BaseException:
            with contextlib.suppress(*CONNECTION_ERRORS):
                await connection.close()
            raise
        self._connection, self._channel, self._tags = connection, channel, tags
        for resource in (connection, channel):
            resource.closing.add_done_callback(partial(self._on_closed, channel))

    async def start(self) -> None:
        """Declare and consume; the first failure is raised (bad URL, topology mismatch)."""
        await self._open()

    def _on_broker_cancel(self, consumer_tag: str) -> None:
        """The broker cancelled a consumer (its queue was deleted): start over on a new connection."""
        if not self._draining and self._connection is not None:
            log.warning("the broker cancelled consumer %s; reconnecting", consumer_tag)
            task = asyncio.get_running_loop().create_task(self._connection.close())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def _on_closed(self, channel: Channel, _: asyncio.Future[Any]) -> None:
        if any(message.channel is channel for _, message in self._ready):
            # Not started yet and their channel is gone: the broker redelivers them; handling them
            # now would only do the work twice. (In place: the workers hold this deque.)
            kept = [item for item in self._ready if item[1].channel is not channel]
            self._ready.clear()
            self._ready.extend(kept)
        if self._draining or channel is not self._channel or self._supervisor is not None:
            return
        self._channel = None
        log.warning("lost the consuming connection; reconnecting")
        self._supervisor = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        old, self._connection = self._connection, None
        if old is not None and not old.is_closed:
            with contextlib.suppress(*CONNECTION_ERRORS):
                await old.close()
        failures = 0
        try:
            while not self._draining:
                try:
                    await self._open()
                except TopologyError as exc:
                    log.error("cannot consume after reconnecting: %s", exc)
                    if not self.done.done():
                        self.done.set_exception(exc)
                    return
                except (ConnectionFailedError, *CONNECTION_ERRORS) as exc:
                    failures += 1
                    delay = _RECONNECT.delay(failures)
                    log.warning("reconnect attempt %d failed (%s); next in %.1fs", failures, exc, delay)
                    await asyncio.sleep(delay)
                    continue
                self.reconnects += 1
                log.warning("reconnected after %d failed attempt(s); consuming again", failures)
                return
        finally:
            self._supervisor = None

    # -- one delivery -------------------------------------------------------------------------

    def _on_message(self, dispatcher: QueueDispatcher, message: Message) -> None:
        """Called inside the socket read for every delivery, in delivery order."""
        channel = message.channel
        if self._draining:
            self._settle(channel, message.delivery_tag, requeue=True)
            return
        if channel is self._channel:
            self._acks.received(message.delivery_tag)
        self._ready.append((dispatcher, message))
        self._kick()

    def _kick(self) -> None:
        """Get a worker to the waiting deliveries: wake an idle one or make one, one at a time."""
        if self._waking or not self._ready or self._draining:
            return
        if self._idle:
            self._idle.pop().set_result(None)
        elif len(self._workers) < self._max_workers:
            task = asyncio.get_running_loop().create_task(self._work())
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)
        else:
            return
        self._waking = True

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        ready, in_flight = self._ready, self._in_flight
        self._waking = False
        while not self._draining:
            if not ready:
                waiter = loop.create_future()
                self._idle.append(waiter)
                try:
                    await waiter
                finally:
                    self._waking = False
                continue
            dispatcher, message = ready.popleft()
            if ready:
                self._kick()  # more waiting: someone else takes over if this handler suspends
            in_flight.add(task)
            try:
                await self._handle(dispatcher, message)
            except asyncio.CancelledError:
                if self._draining or task.cancelling():
                    raise
                log.warning("handler for a delivery on %s was cancelled; handing it back", dispatcher.queue)
                self._settle(message.channel, message.delivery_tag, requeue=True)
            finally:
                in_flight.discard(task)

    async def _handle(self, dispatcher: QueueDispatcher, message: Message) -> None:
        channel, tag = message.channel, message.delivery_tag
        properties = message.properties
        delivery = Delivery(
            body=message.body,
            headers=properties.headers,
            content_type=properties.content_type,
            exchange=message.exchange,
            routing_key=message.routing_key,
            redelivered=message.redelivered,
        )
        outcome = dispatcher.prepare(delivery)
        if not isinstance(outcome, Ready):
            log.warning("parking delivery on %s: %s: %s", dispatcher.queue, outcome.code, outcome.error)
            await self._park(dispatcher, delivery, properties, outcome, 1, channel, tag)
            return
        subscription, context = outcome.subscription, outcome.context
        try:
            if subscription.timeout is None:
                await outcome.call()
            else:
                await self._call_limited(outcome, subscription.timeout)
        except Exception as exc:
            failure: BaseException = exc
            decision = subscription.retry.decide(failure, context.attempt)
            if isinstance(decision, Retry):
                log.warning("handler for %s %s failed on attempt %d (%r); retrying in %.1fs",
                            context.type, context.id, context.attempt, failure, decision.delay)
                await self._retry(dispatcher, delivery, properties, failure, decision, channel, tag)
            else:
                log.warning("handler for %s %s failed on attempt %d (%r); parking it",
                            context.type, context.id, context.attempt, failure)
                await self._park(dispatcher, delivery, properties, decision, context.attempt, channel, tag)
            return
        self._settle(channel, tag)

    async def _call_limited(self, outcome: Ready, seconds: float) -> None:
        """Run the handler under its time limit (``_time_limits``: one timer for all handlers)."""
        task = asyncio.current_task()
        assert task is not None
        token = self._limits.start(task, seconds)
        try:
            await outcome.call()
        except asyncio.CancelledError:
            if self._limits.finish(task, token):
                context = outcome.context
                raise HandlerTimeoutError(seconds, event_type=context.type, event_id=context.id) from None
            raise
        except BaseException:
            self._limits.finish(task, token)
            raise
        self._limits.finish(task, token)

    def _settle(self, channel: Channel, tag: int, *, requeue: bool | None = None) -> None:
        """Ack (``requeue`` None) or nack on the delivery's own channel; a dead channel means the
        broker has already put the delivery back, so there is nothing left to do.

        An ack only marks the delivery processed; ``_flush_acks`` sends it with the others
        processed in the same loop iteration."""
        if requeue is None and channel is self._channel:
            self._acks.processed(tag)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                asyncio.get_running_loop().call_soon(self._schedule_flush, channel)
            return
        if channel is self._channel:
            self._acks.forget(tag)
        try:
            if requeue is None:
                channel.basic_ack(tag)
            else:
                channel.basic_nack(tag, requeue=requeue)
        except CONNECTION_ERRORS as exc:
            log.debug("could not settle delivery %s (%s); the broker redelivers it", tag, exc)

    def _schedule_flush(self, channel: Channel) -> None:
        self._flush_scheduled = False
        if channel is self._channel and self._acks.pending:
            self._flush_acks(channel, self._acks.take())

    @staticmethod
    def _flush_acks(channel: Channel, frames: list[tuple[int, bool]]) -> None:
        if not frames:
            return
        try:
            channel.ack_many(frames)
        except CONNECTION_ERRORS as exc:
            log.debug("could not ack up to delivery %s (%s); the broker redelivers", frames[-1][0], exc)

    async def _republish_then_ack(
        self, publish: Callable[[], Any], channel: Channel, tag: int, what: str
    ) -> None:
        try:
            await publish()
        except EventBusError as exc:  # not confirmed, broker unreachable, or a declaration refused
            log.error("could not %s (%s); handing the delivery back to the queue", what, exc)
            await asyncio.sleep(_SETTLE_PAUSE)
            self._settle(channel, tag, requeue=True)
            return
        self._settle(channel, tag)

    async def _retry(self, dispatcher: QueueDispatcher, delivery: Delivery, properties: Properties,
                     failure: BaseException, decision: Retry, channel: Channel, tag: int) -> None:
        ticks, headers = dispatcher.retry_copy(delivery, failure, decision)
        publish = partial(
            self._publisher.send_delayed, body=delivery.body, ticks=ticks, target=dispatcher.queue,
            properties=_copy_properties(properties, headers),
        )
        await self._republish_then_ack(publish, channel, tag, f"schedule a retry on {dispatcher.queue}")

    async def _park(self, dispatcher: QueueDispatcher, delivery: Delivery, properties: Properties,
                    reason: ParkReason, attempt: int, channel: Channel, tag: int) -> None:
        publish = partial(
            self._publisher.send, body=delivery.body, exchange="", routing_key=dead_letter_queue_name(dispatcher.queue),
            properties=_copy_properties(properties, dispatcher.park_copy(delivery, reason, attempt)),
        )
        await self._republish_then_ack(publish, channel, tag, f"park a delivery from {dispatcher.queue}")

    # -- shutdown -----------------------------------------------------------------------------

    def hurry(self) -> None:
        """Cancel the handlers still running (a second SIGTERM); ``stop`` then requeues their deliveries."""
        for task in list(self._in_flight):
            task.cancel()

    async def stop(self, grace: float) -> None:
        """Stop taking deliveries, give in-flight handlers ``grace`` seconds, requeue the rest, close."""
        self._draining = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        channel = self._channel
        if channel is not None and not channel.is_closed:
            for tag in self._tags:
                with contextlib.suppress(*CONNECTION_ERRORS):
                    await channel.basic_cancel(tag)
        self._ready.clear()  # never started: the nack below hands them back
        for waiter in self._idle:
            waiter.cancel()
        self._idle.clear()
        busy = set(self._in_flight)
        if busy:
            log.info("waiting up to %gs for %d handler(s) to finish", grace, len(busy))
            _, pending = await asyncio.wait(busy, timeout=grace)
            if pending:
                log.warning("%d handler(s) did not finish within %gs; requeueing their deliveries", len(pending), grace)
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending)
        for task in list(self._workers):
            task.cancel()
        if self._workers:
            await asyncio.wait(set(self._workers))
        if channel is not None and not channel.is_closed:
            self._flush_acks(channel, self._acks.take())  # processed work is acked, never requeued
            with contextlib.suppress(*CONNECTION_ERRORS):
                channel.basic_nack(0, multiple=True, requeue=True)
        self._limits.close()
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and not connection.is_closed:
            with contextlib.suppress(*CONNECTION_ERRORS):
                await connection.close()
        if not self.done.done():
            self.done.set_result(None)
