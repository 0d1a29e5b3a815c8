"""The consuming side of the asyncio bus, above the transport seam: declare, consume, settle,
survive the broker, drain.

Settling a delivery (after ``QueueDispatcher.prepare`` and the handler ran):
- success → ack;
- a failure → the copy ``_settlement.plan_failure`` says (retry copy into the delay queues,
  or park copy to ``<queue>.dlq``), confirmed, then ack; if that publish fails, the delivery
  is nacked back to the queue: nothing is acked unsettled.
- a request (``reply_to`` set) is answered before the ack (``_replies``): the handler's result,
  or its error once the delivery is parked; a retry answers nothing (its last attempt does).
- a workflow step or delayed message that was revoked (``_revocation_check``, before anything
  else) → ack, nothing runs; the store unreachable → nack back to the queue after a pause.

Deliveries reach ``_on_message`` straight from the transport (for the lean client, inside the
socket read), in order, and wait in a deque for a worker task. Workers are long-lived and made
only as needed (up to the prefetch per queue): a worker whose handler finishes without
suspending takes the next delivery at once, and another worker is woken only when the queue
still has work, so the common case costs no task, future or callback per message while slow
handlers still run side by side.

Acks go to the session the delivery came on (the transport batches them); after a reconnect
that session is gone, the ack is dropped and the broker redelivers (at-least-once). When a
session ends, a supervisor opens a new one with backoff (declaring the topology again).
``stop`` cancels the consumers, lets in-flight handlers finish within ``grace``, cancels the
rest and hands everything unacked back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from functools import partial
from typing import Any

from ._async_publisher import AsyncPublisher, delay_machinery, properties_of
from ._delay import DELIVER_EXCHANGE, Binding, ExchangeSpec, target_binding_key
from ._dispatch import Delivery, QueueDispatcher, Ready
from ._envelope import binary_attribute
from ._exceptions import EventBusError, HandlerTimeoutError, TopologyError, UnroutableError
from ._outgoing import OutgoingMessage
from ._parking import ParkReason
from ._replies import error_reply, ok_reply
from ._retry import ExponentialBackoff, Retry
from ._revocation_check import RevocationCheck, Verdict, event_type_of, revocation_ids
from ._settings import BusSettings
from ._settlement import after_republish, plan_failure
from ._time_limits import TimeLimits
from ._topology import dead_letter_queue_name, queue_specs
from .transports import Outgoing, Session, Topology
from .workflows import REPORTS_EXCHANGE, SLIP_HEADER, STEP_RESULT_ERRORS, WORKFLOW_HEADER
from .workflows._runtime import StepRun, after_park, after_success, read_step

__all__ = ["AsyncConsumer", "consumer_topology"]

log = logging.getLogger("eventbus")

_RECONNECT = ExponentialBackoff(first=0.5, factor=2.0, maximum=30.0, jitter=0.5)
_SETTLE_PAUSE = 1.0  # after a failed retry/park publish, before handing the delivery back


def consumer_topology(settings: BusSettings, dispatcher: QueueDispatcher) -> Topology:
    """One consumer queue: its exchanges, the queue and its DLQ, its bindings (incl. retries)."""
    main, dead_letters = queue_specs(dispatcher.queue, settings.queue_type, settings.delivery_limit,
                                     single_active_consumer=dispatcher.single_active_consumer)
    exchanges = tuple(ExchangeSpec(name) for name in sorted({s.contract.exchange for s in dispatcher.subscriptions}))
    bindings = [
        Binding(s.contract.exchange, dispatcher.queue, key) for s in dispatcher.subscriptions for key in s.binding_keys
    ]
    bindings.append(Binding(DELIVER_EXCHANGE, dispatcher.queue, target_binding_key(dispatcher.queue)))
    return Topology(dispatcher.queue, exchanges, (main, dead_letters), tuple(bindings))


class AsyncConsumer:
    """Consumes every queue of one bus on one session, and keeps doing so across broker faults."""

    def __init__(self, settings: BusSettings, publisher: AsyncPublisher, dispatchers: Sequence[QueueDispatcher],
                 revocations: RevocationCheck | None = None):
        self._settings = settings
        self._revocations = revocations
        self._publisher = publisher
        self._transport = publisher.transport
        self._dispatchers = list(dispatchers)
        self._session: Session | None = None
        self._ready: deque[tuple[QueueDispatcher, Any]] = deque()
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

    async def _open(self) -> None:
        topologies = [delay_machinery(), *(consumer_topology(self._settings, d) for d in self._dispatchers)]
        callbacks = {d.queue: partial(self._on_message, d) for d in self._dispatchers}
        session = await self._transport.consume(topologies, callbacks, self._settings.prefetch)
        for dispatcher in self._dispatchers:
            types = ", ".join(s.contract.type for s in dispatcher.subscriptions)
            log.info("consuming %s (%s)", dispatcher.queue, types)
        self._session = session
        session.closed.add_done_callback(partial(self._on_closed, session))

    async def start(self) -> None:
        """Declare and consume; the first failure is raised (bad URL, topology mismatch)."""
        await self._open()

    def _on_closed(self, session: Session, _: asyncio.Future[Any]) -> None:
        if any(session.owns(message) for _, message in self._ready):
            # Not started yet and their session is gone: the broker redelivers them; handling them
            # now would only do the work twice. (In place: the workers hold this deque.)
            kept = [item for item in self._ready if not session.owns(item[1])]
            self._ready.clear()
            self._ready.extend(kept)
        if self._draining or session is not self._session or self._supervisor is not None:
            return
        self._session = None
        log.warning("lost the consuming connection; reconnecting")
        self._supervisor = asyncio.get_running_loop().create_task(self._reconnect(session))

    async def _reconnect(self, old: Session) -> None:
        with contextlib.suppress(Exception):
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
                except Exception as exc:
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

    def _on_message(self, dispatcher: QueueDispatcher, message: Any) -> None:
        """Called by the transport for every delivery, in delivery order."""
        if self._draining:
            self._settle(message, requeue=True)
            return
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
                self._settle(message, requeue=True)
            finally:
                in_flight.discard(task)

    async def _revoked(self, message: Any, queue: str) -> bool:
        """True when the revocation check settled the delivery, before anything else runs: revoked →
        ack (no handler, no step forwarded, nothing parked); store unreachable → hand it back after a
        pause. Deliveries without a workflow id or a deliver-at header cost no look-up."""
        properties = message.properties
        ids = revocation_ids(properties.headers, properties.message_id)
        if not ids or self._revocations is None:
            return False
        event_type = event_type_of(properties.headers, properties.message_type)
        verdict = await self._revocations.verdict(ids, event_type=event_type, queue=queue)
        if verdict is Verdict.RUN:
            return False
        if verdict is Verdict.UNKNOWN:
            await asyncio.sleep(_SETTLE_PAUSE)
            self._settle(message, requeue=True)
        else:
            self._settle(message)
        return True

    async def _handle(self, dispatcher: QueueDispatcher, message: Any) -> None:
        if self._revocations is not None and await self._revoked(message, dispatcher.queue):
            return
        properties = message.properties
        delivery = Delivery(
            body=message.body,
            headers=properties.headers,
            content_type=properties.content_type,
            exchange=message.exchange,
            routing_key=message.routing_key,
            redelivered=message.redelivered,
        )
        headers = properties.headers
        # A workflow step (docs/wire-format.md, the routing slip): a bad slip parks it unrun.
        step = read_step(headers) if headers and (WORKFLOW_HEADER in headers or SLIP_HEADER in headers) else None
        if step is not None and step.problem is not None:
            log.warning("parking workflow step %s/%s on %s: %s", step.workflow_id, step.step, dispatcher.queue,
                        step.problem.error)
            await self._settle_failure(dispatcher, delivery, message, step.problem, 1, None, step)
            return
        outcome = dispatcher.prepare(delivery)
        if not isinstance(outcome, Ready):
            log.warning("parking delivery on %s: %s: %s", dispatcher.queue, outcome.code, outcome.error)
            await self._settle_failure(dispatcher, delivery, message, outcome, 1, None, step)
            return
        subscription = outcome.subscription
        try:
            if subscription.timeout is None:
                result = await outcome.call()
            else:
                result = await self._call_limited(outcome, subscription.timeout)
        except Exception as exc:
            await self._settle_failure(dispatcher, delivery, message, exc, outcome.context.attempt, outcome, step)
            return
        if step is not None and not await self._move_on(dispatcher, delivery, message, outcome, step, result):
            return
        if properties.reply_to:
            await self._answer(ok_reply(properties, result, source=self._settings.source))
        self._settle(message)

    async def _move_on(self, dispatcher: QueueDispatcher, delivery: Delivery, message: Any, outcome: Ready,
                       step: StepRun, result: Any) -> bool:
        """After a step's handler: its next steps and its report go out in one confirmed batch; True
        when they did (the delivery may be acked), False when the delivery was settled otherwise."""
        context = outcome.context
        try:
            messages = after_success(step, result, event_type=context.type, attempt=context.attempt,
                                     source=self._settings.source)
        except STEP_RESULT_ERRORS as exc:
            reason = ParkReason("workflow_result_invalid", str(exc), type(exc).__name__)
            log.warning("workflow step %s/%s: %s; parking it", step.workflow_id, step.step, exc)
            await self._settle_failure(dispatcher, delivery, message, reason, context.attempt, outcome, step)
            return False
        error = await self._send_workflow(messages)
        if error is None:
            return True
        log.error("could not move workflow %s on after step %s (%s); handing the delivery back",
                  step.workflow_id, step.step, error)
        await asyncio.sleep(_SETTLE_PAUSE)
        self._settle(message, requeue=True)
        return False

    async def _send_workflow(self, messages: Sequence[OutgoingMessage], first: Outgoing | None = None
                             ) -> BaseException | None:
        """Publish ``first`` (a park copy) and ``messages`` in one confirmed batch; the first failure.
        Reports need no queue (no engine, no tracking): their ``UnroutableError`` is no failure."""
        items: list[Outgoing] = [] if first is None else [first]
        try:
            for exchange in sorted({m.exchange for m in messages}):
                await self._publisher.ensure_exchange(exchange)
            items += [(m.exchange, m.routing_key, properties_of(m), m.body) for m in messages]
            outcomes = await self._publisher.send_batch(items)
        except EventBusError as exc:
            return exc
        for item, outcome in zip(items, outcomes, strict=True):
            if outcome is not None and not (item[0] == REPORTS_EXCHANGE and isinstance(outcome, UnroutableError)):
                return outcome
        return None

    async def _answer(self, reply: Outgoing) -> None:
        """Send a request's reply (best effort: a requester that is gone cannot be answered).

        RabbitMQ returns a mandatory publish to a direct reply-to name even when it delivers it,
        so ``UnroutableError`` says nothing here; the reply is never a reason to redeliver."""
        error: BaseException | None
        try:
            (error,) = await self._publisher.send_batch([reply])
        except EventBusError as exc:
            error = exc
        if error is not None and not isinstance(error, UnroutableError):
            log.warning("could not send the reply for %s: %s", reply[2].correlation_id, error)

    async def _call_limited(self, outcome: Ready, seconds: float) -> Any:
        """Run the handler under its time limit (``_time_limits``: one timer for all handlers)."""
        task = asyncio.current_task()
        assert task is not None
        token = self._limits.start(task, seconds)
        try:
            result = await outcome.call()
        except asyncio.CancelledError:
            if self._limits.finish(task, token):
                context = outcome.context
                raise HandlerTimeoutError(seconds, event_type=context.type, event_id=context.id) from None
            raise
        except BaseException:
            self._limits.finish(task, token)
            raise
        self._limits.finish(task, token)
        return result

    def _settle(self, message: Any, *, requeue: bool | None = None) -> None:
        """Ack (``requeue`` None) or nack on the delivery's own session; a delivery of a session
        that is gone is already back in its queue, so there is nothing left to do."""
        session = self._session
        if session is None:
            return
        if requeue is None:
            session.ack(message)
        else:
            session.nack(message, requeue=requeue)

    async def _settle_failure(self, dispatcher: QueueDispatcher, delivery: Delivery, message: Any,
                              failure: Exception | ParkReason, attempt: int, ready: Ready | None,
                              step: StepRun | None = None) -> None:
        """Publish the copy ``plan_failure`` says (retry or park), then ack; nack if not confirmed."""
        retry = ready.subscription.retry if ready is not None else None
        plan = plan_failure(dispatcher, delivery, message.properties, failure, attempt=attempt, retry=retry)
        if ready is not None:
            context = ready.context
            then = (f"retrying in {plan.decision.delay:.1f}s" if isinstance(plan.decision, Retry) else "parking it")
            log.warning("handler for %s %s failed on attempt %d (%r); %s", context.type, context.id, attempt,
                        failure, then)
        error: BaseException | None
        try:
            if plan.delayed:
                await self._publisher.ensure_delays()
            if step is not None and isinstance(plan.decision, ParkReason):
                error = await self._send_workflow(self._failure_reports(dispatcher, message, plan.decision,
                                                                        attempt, step), plan.item)
            else:
                (error,) = await self._publisher.send_batch([plan.item])
        except EventBusError as exc:  # broker unreachable, or a declaration refused
            error = exc
        if after_republish(error) == "ack":
            if message.properties.reply_to and isinstance(plan.decision, ParkReason):
                await self._answer(error_reply(message.properties, failure))
            self._settle(message)
            return
        what = "schedule a retry" if plan.delayed else "park a delivery"
        log.error("could not %s on %s (%s); handing the delivery back to the queue", what, dispatcher.queue, error)
        await asyncio.sleep(_SETTLE_PAUSE)
        self._settle(message, requeue=True)

    def _failure_reports(self, dispatcher: QueueDispatcher, message: Any, reason: ParkReason, attempt: int,
                         step: StepRun) -> list[OutgoingMessage]:
        """The ``workflow.failed`` report and ``on_error`` steps of a parked step."""
        properties = message.properties
        headers = properties.headers or {}
        event_type = binary_attribute(headers, "type") or properties.message_type or ""
        message_id = binary_attribute(headers, "id") or properties.message_id or ""
        return after_park(step, reason, event_type=event_type, message_id=message_id, attempt=attempt,
                          queue=dead_letter_queue_name(dispatcher.queue), source=self._settings.source)

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
        session = self._session
        if session is not None:
            with contextlib.suppress(Exception):
                await session.cancel()
        self._ready.clear()  # never started: closing the session hands them back
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
        self._limits.close()
        self._session = None
        if session is not None:
            with contextlib.suppress(Exception):
                await session.close()  # acks what was processed, hands the rest back
        if not self.done.done():
            self.done.set_result(None)
