"""The asyncio event bus: confirmed (and delayed) publishing, typed handlers with retries.

Two connections per bus, on purpose: RabbitMQ blocks *publishing* connections under a memory or
disk alarm, and a consumer that shares one would stop acking and stall. Publishing (including
retries and parking) goes through ``AsyncPublisher``; consuming and acking through
``AsyncConsumer``, which also reconnects and drains on shutdown. Both talk to a ``Transport``
(``transports/``) and to nothing else below it: the SDK's lean AMQP client by default, aio-pika
on request, or the in-memory broker of ``eventbus.testing``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal, TypeVar, overload

from pydantic import BaseModel

from ._async_consumer import AsyncConsumer
from ._async_publisher import AsyncPublisher, properties_of
from ._contract import EventContract, known_contract
from ._delay import Binding, ExchangeSpec
from ._dispatch import QueueDispatcher, Subscription
from ._envelope import ordering_extensions
from ._exceptions import ConfigurationError, UnroutableError
from ._limits import InputLimits
from ._outgoing import OutgoingMessage, build_outgoing, plan_delay
from ._requests import Requests
from ._retry import RetryPolicy
from ._revocation_check import RevocationCheck
from ._revocations import DEFAULT_REVOKE_TTL, Revocations, open_revocations, substituted_revocations
from ._settings import BusSettings
from ._subscribing import group_by_queue, make_subscription
from ._tap import TappedMessage, tap
from ._topology import queue_specs
from .tasks import Task, task_contract
from .transports import Topology, Transport
from .workflows import ENGINE_QUEUE, REPORTS_EXCHANGE, Canvas, start_messages
from .workflows._reports import CANCELLED, WorkflowCancelled
from .workflows._slip import workflow_report_id

__all__ = ["EventBus", "Middleware"]

log = logging.getLogger("eventbus")

ModelT = TypeVar("ModelT", bound=BaseModel)
Handler = Callable[..., Any]
CallNext = Callable[[Any, Any], Awaitable[Any]]
Middleware = Callable[[CallNext, Any, Any], Awaitable[Any]]
"""``async def layer(call_next, event, context)``: wraps every handler call of a bus (logging,
metrics, dedup); composed once at subscribe time, so a bus without middleware pays nothing."""
Hook = Callable[[], Any]


async def _call_hook(hook: Hook) -> None:
    result = hook()
    if inspect.isawaitable(result):
        await result


class EventBus:
    """Publish typed events and run typed handlers for one service.

    ``async with EventBus(settings) as bus`` opens the publish connection lazily on first use;
    ``await bus.run()`` declares the queues of every ``@bus.subscribe`` handler and consumes
    until ``await bus.stop()`` (``eventbus worker`` calls it on SIGTERM/SIGINT): stop taking
    deliveries, let in-flight handlers finish within the grace period, requeue the rest.
    """

    def __init__(
        self, settings: BusSettings, *, middleware: Sequence[Middleware] = (), transport: Transport | str | None = None,
        revocations: Revocations | None = None,
    ) -> None:
        """``transport`` picks the broker client: ``"lean"`` (default), ``"aio-pika"``, or a
        ``Transport`` such as ``eventbus.testing.MemoryBroker().transport()``; None means
        ``settings.transport``. ``revocations`` is the revocation store (``cancel``, ``revoke``);
        None means Redis at ``settings.revocations_url``, or no store when that is unset."""
        self.settings = settings
        self._revocations_given = revocations or substituted_revocations()
        self._revocation_check: RevocationCheck | None = None
        self._revocations_opened = False
        self._middleware = tuple(middleware)
        self._publisher = AsyncPublisher(settings, transport)
        self._subscriptions: list[Subscription] = []
        self._tasks: list[Task[Any, Any]] = []
        self._requests = Requests(settings, self._publisher)
        self._consumer: AsyncConsumer | None = None
        self._executors: dict[str, Executor] = {}
        self._startup: list[Hook] = []
        self._shutdown: list[Hook] = []
        self._started_hooks = False
        self._idle: asyncio.Future[None] | None = None
        self._stopping: AsyncConsumer | None = None

    @property
    def transport(self) -> Transport:
        """The broker client this bus talks to (see ``eventbus.transports``)."""
        return self._publisher.transport

    @classmethod
    def from_env(cls, service: str, **overrides: Any) -> EventBus:
        """A bus for ``service`` configured by ``EVENTBUS_URL`` (see ``BusSettings.from_env``)."""
        return cls(BusSettings.from_env(service, **overrides))

    async def __aenter__(self) -> EventBus:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- publishing ---------------------------------------------------------------------------

    async def publish(
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
        """Validate, publish and wait for the broker's confirm; returns the event id.

        ``delay`` (seconds or a timedelta) or ``at`` (an aware datetime) hold the event back
        for 0 s … 7 days, to the nearest 100 ms; it then reaches every subscriber as a direct
        publish would (see docs/reliability.md). Raises ``EventValidationError`` before sending
        anything when the event breaks its contract, ``UnroutableError`` when no queue is bound
        for it (checked at publish time for undelayed events), and another ``PublishError``
        when the broker does not confirm it in time.

        ``partition_key`` and ``sequence`` (a non-negative integer) set the CloudEvents
        ``partitionkey`` and ``sequence`` attributes, for consumers that keep the newest event of
        each key (docs/ordering.md); the caller keeps the sequence growing per key.
        """
        message = build_outgoing(
            event, source=self.settings.source, subject=subject, event_id=event_id, time=time, headers=headers,
            extensions=ordering_extensions(partition_key, sequence),
        )
        await self._publisher.publish_messages([message], ticks=plan_delay(delay, at), window=1)
        return message.message_id

    async def publish_many(
        self, events: Iterable[BaseModel], *, subject: str | None = None, delay: float | timedelta | None = None
    ) -> list[str]:
        """Publish a batch with up to ``settings.publish_window`` confirms outstanding at once.

        Every event is validated before the first is sent; the batch goes out in a few large
        socket writes. All events are attempted; if any fails, the first error is raised after
        the rest have settled, and its ``event_id`` says which one (the others that returned no
        error are confirmed).
        """
        messages = [build_outgoing(e, source=self.settings.source, subject=subject) for e in events]
        await self._publisher.publish_messages(
            messages, ticks=plan_delay(delay, None), window=self.settings.publish_window
        )
        return [m.message_id for m in messages]

    async def _publish_outcomes(self, messages: Sequence[OutgoingMessage]) -> list[BaseException | None]:
        """Publish prepared messages as one batch; one outcome per message (for the outbox relay)."""
        return await self._publisher.publish_outcomes(messages, ticks=None, window=self.settings.publish_window)

    async def request(
        self,
        event: BaseModel,
        *,
        reply: type[ModelT] | None,
        timeout: float,
        subject: str | None = None,
        headers: dict[str, Any] | None = None,
    ) -> Any:
        """Publish ``event`` as a request and wait up to ``timeout`` seconds for its typed reply.

        The handler's result (a model of ``reply``'s contract) comes back through RabbitMQ direct
        reply-to, validated against that contract; ``reply=None`` waits for the handler to finish
        and returns None. Raises ``RemoteTaskError`` (``remote_type``, ``remote_message``) when the
        handler failed its last attempt or the request was parked, ``RequestTimeoutError`` when no
        reply came in time (nothing is left on the broker), and what ``publish`` raises.
        """
        return await self._requests.request(event, reply=reply, timeout=timeout, subject=subject, headers=headers)

    async def declare_exchanges(self, contracts: Iterable[EventContract[Any]]) -> list[str]:
        """Declare the topic exchange of every contract (idempotent); returns their names."""
        names = sorted({c.exchange for c in contracts})
        for name in names:
            await self._publisher.ensure_exchange(name)
        return names

    # -- cancel and revoke ------------------------------------------------------------------------

    def _revocations(self) -> RevocationCheck | None:
        """The revocation check, opened on first need from the settings in force then."""
        if not self._revocations_opened:
            self._revocations_opened = True
            store = open_revocations(self._revocations_given, self.settings.revocations_url)
            self._revocation_check = RevocationCheck(store) if store is not None else None
        return self._revocation_check

    def _store(self, what: str) -> Revocations:
        check = self._revocations()
        if check is None:
            raise ConfigurationError(
                f"{what} needs a revocation store: set BusSettings(revocations_url='redis://…') or "
                "EVENTBUS_REVOCATIONS_URL, or pass EventBus(..., revocations=RedisRevocations(url))"
            )
        return check.store

    async def revoke(self, event_id: str, *, ttl: float | timedelta = DEFAULT_REVOKE_TTL) -> None:
        """Revoke one event (the id ``publish``, ``delay`` or ``apply_async`` returned): a consumer
        with the same store drops it, unrun, if it is delayed or a workflow step (a plain event
        already delivered is not looked up). Kept ``ttl`` (default 7 days, the longest delay)."""
        await self._store("revoke").revoke(event_id, ttl)

    async def cancel(self, workflow_id: str, *, ttl: float | timedelta = DEFAULT_REVOKE_TTL) -> None:
        """Cancel a workflow: its steps not yet run are dropped at dispatch (running ones finish,
        but what they forward is dropped in turn), and the ``eventbus.workflow.cancelled.v1`` report
        is published (confirmed) to the ``eventbus.workflow`` exchange for the engine and tracking."""
        await self._store("cancel").revoke(workflow_id, ttl)
        report = WorkflowCancelled(workflow_id=workflow_id, cancelled_at=datetime.now(UTC))
        message = build_outgoing(report, source=self.settings.source, contract=CANCELLED,
                                 event_id=workflow_report_id(workflow_id, "cancelled"))
        (outcome,) = await self._publisher.publish_outcomes([message], ticks=None, window=1)
        if outcome is not None and not isinstance(outcome, UnroutableError):  # no engine is no error
            raise outcome

    @property
    def revoked_dropped(self) -> int:
        """How many revoked deliveries this bus's consumers dropped (acked without running)."""
        check = self._revocation_check
        return check.dropped if check is not None else 0

    def tap(
        self, pattern: str, exchanges: Iterable[str], *, timeout: float | None = None
    ) -> AsyncIterator[TappedMessage]:
        """``async for message in bus.tap("chat.#", ["chat"])``: a copy of every message routed to
        ``exchanges`` whose key matches ``pattern``.

        The tap has its own exclusive, auto-deleted queue, so it never takes messages from the
        services consuming them; it stops after ``timeout`` seconds (forever when None).
        """
        return tap(self.settings, pattern, exchanges, timeout=timeout, transport=self.transport)

    # -- consuming ----------------------------------------------------------------------------

    def _executor(self, kind: Literal["thread", "process"] | Executor | None) -> Executor:
        if isinstance(kind, Executor):
            return kind
        name = kind or "thread"
        if name not in self._executors:
            self._executors[name] = (
                ThreadPoolExecutor(self.settings.prefetch, thread_name_prefix="eventbus-handler")
                if name == "thread"
                else ProcessPoolExecutor()
            )
        return self._executors[name]

    def subscribe(
        self,
        model: type[ModelT],
        *,
        queue: str | None = None,
        binding_keys: Sequence[str] | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        executor: Literal["thread", "process"] | Executor | None = None,
        middleware: Sequence[Middleware] = (),
        single_active_consumer: bool = False,
        limits: InputLimits | None = None,
    ) -> Callable[[Handler], Handler]:
        """Register ``handler(event)`` or ``handler(event, context)`` for ``model``.

        The queue defaults to ``<service>.<event type>``, a quorum queue bound to the
        contract's exchange with the event type as routing key. ``retry`` (default
        ``settings.retry``) says how failures are retried; ``timeout`` (default
        ``settings.handler_timeout``) limits one run: past it the handler is cancelled and
        the attempt counts as failed. An async handler runs on the event loop; a sync one in
        a thread (``executor="thread"``, the default) or, for CPU-bound work, a process
        (``executor="process"``; the handler must be a module-level function), so a long
        handler never starves the connection's heartbeats. ``single_active_consumer=True``
        declares the queue with ``x-single-active-consumer``: however many replicas subscribe,
        one receives, in queue order (for per-key order, see docs/ordering.md).
        ``limits`` replaces ``settings.limits`` for this queue (e.g. a queue of large messages).
        """

        def register(handler: Handler) -> Handler:
            call: Handler = handler
            if not inspect.iscoroutinefunction(handler):
                if not isinstance(executor, Executor) and executor not in (None, "thread", "process"):
                    raise ConfigurationError(f"executor must be 'thread', 'process' or an Executor, got {executor!r}")

                async def in_executor(*args: Any) -> Any:
                    # The pool is made on first use, sized by the settings in force then (--concurrency).
                    pool = self._executor(executor)
                    return await asyncio.get_running_loop().run_in_executor(pool, partial(handler, *args))

                call = in_executor
            elif executor is not None:
                raise ConfigurationError(f"{handler!r} is async; executor= applies to sync handlers only")
            subscription = make_subscription(
                self.settings, model, handler, call, queue=queue, binding_keys=binding_keys, retry=retry,
                timeout=timeout, single_active_consumer=single_active_consumer, limits=limits,
            )
            layers = self._middleware + tuple(middleware)
            if layers:
                subscription = subscription.with_layers(layers)
            self._subscriptions.append(subscription)
            return handler

        return register

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self._subscriptions)

    def task(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        version: int = 1,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        examples: Sequence[dict[str, Any]] = (),
    ) -> Any:
        """``@bus.task`` or ``@bus.task(...)``: make a typed function a task (``eventbus.Task``).

        Its command contract is made from the signature (type ``tasks.<service>.<name>.v<version>``,
        docs/workflows.md); it is consumed from its own queue like any subscription, with
        ``retry`` and ``timeout`` as for ``subscribe``; sync functions run in the handler threads.
        ``examples`` go into the exported contract. The function's result is the reply to a
        request (``request``) when it is a model of a contract.
        """

        def register(function: Callable[..., Any]) -> Task[Any, Any]:
            contract = task_contract(function, service=self.settings.service, name=name, version=version)
            if any(task.type == contract.type for task in self._tasks):
                raise ConfigurationError(f"two tasks are called {contract.type}: give one of them name= or version=")
            made = Task(function, contract, self.publish, examples)
            self.subscribe(contract.model, retry=retry, timeout=timeout)(made.handler())
            self._tasks.append(made)
            return made

        return register(fn) if fn is not None else register

    @property
    def tasks(self) -> list[Task[Any, Any]]:
        return list(self._tasks)

    def on_startup(self, hook: Hook) -> Hook:
        """Run ``hook()`` (sync or async) before consuming starts, e.g. to open a database pool."""
        self._startup.append(hook)
        return hook

    def on_shutdown(self, hook: Hook) -> Hook:
        """Run ``hook()`` after consuming stopped and in-flight handlers finished."""
        self._shutdown.append(hook)
        return hook

    @overload
    async def start(self) -> None: ...

    @overload
    async def start(self, canvas: Canvas, *, on_error: Canvas | None = None, workflow_id: str | None = None) -> str: ...

    async def start(self, canvas: Canvas | None = None, *, on_error: Canvas | None = None,
                    workflow_id: str | None = None) -> str | None:
        """Without a canvas: run startup hooks, declare the topology of every subscription and consume.

        Raises ``ConnectionFailedError`` when no broker answers and ``TopologyMismatchError``
        when a queue exists with other arguments; after that, broker faults are survived.

        With a canvas (``chain``, ``group``, ``chord``, a step): check its types, then publish the
        ``workflow.started`` report and its first steps in one confirmed batch; returns the
        workflow id. ``on_error`` runs with the ``WorkflowFailed`` report when a step fails for
        good (docs/workflows.md). Raises ``ConfigurationError`` for a canvas whose steps do not fit.
        """
        if canvas is not None:
            return await self._start_workflow(canvas, on_error, workflow_id)
        await self._consume()
        return None

    async def _start_workflow(self, canvas: Canvas, on_error: Canvas | None, workflow_id: str | None) -> str:
        workflow_id, messages = start_messages(canvas, on_error=on_error, workflow_id=workflow_id,
                                               source=self.settings.source, contracts=known_contract)
        main, dead_letters = queue_specs(ENGINE_QUEUE, "quorum", self.settings.delivery_limit)
        await self.transport.declare(Topology(ENGINE_QUEUE, (ExchangeSpec(REPORTS_EXCHANGE),), (main, dead_letters),
                                              (Binding(REPORTS_EXCHANGE, ENGINE_QUEUE, "#"),)))
        for exchange in sorted({m.exchange for m in messages}):
            await self._publisher.ensure_exchange(exchange)
        items = [(m.exchange, m.routing_key, properties_of(m), m.body) for m in messages]
        for message, error in zip(messages, await self._publisher.send_batch(items), strict=True):
            if error is not None and not (message.exchange == REPORTS_EXCHANGE and isinstance(error, UnroutableError)):
                raise error
        return workflow_id

    async def _consume(self) -> None:
        if not self._started_hooks:
            self._started_hooks = True
            for hook in self._startup:
                await _call_hook(hook)
        if self._consumer is not None or not self._subscriptions:
            return
        dispatchers = [
            QueueDispatcher(queue, subscriptions, self.settings.limits)
            for queue, subscriptions in group_by_queue(self._subscriptions).items()
        ]
        consumer = AsyncConsumer(self.settings, self._publisher, dispatchers, self._revocations())
        await consumer.start()
        self._consumer = consumer

    async def run(self) -> None:
        """Start, then serve until ``stop()``; raises if consuming cannot resume after a fault."""
        await self.start()
        if self._consumer is None:
            self._idle = asyncio.get_running_loop().create_future()
            await self._idle
            return
        await asyncio.shield(self._consumer.done)

    async def stop(self, grace: float | None = None) -> None:
        """Stop taking deliveries, give in-flight handlers ``grace`` seconds (default
        ``settings.shutdown_grace``), requeue what did not finish, close the consumer.

        Called again while draining (a second SIGTERM), it cancels the running handlers at once;
        their deliveries go back to the queue.
        """
        if self._stopping is not None:
            self._stopping.hurry()  # asked again while draining: do not wait for the grace period
            return
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            self._stopping = consumer
            try:
                await consumer.stop(self.settings.shutdown_grace if grace is None else grace)
            finally:
                self._stopping = None
        if self._idle is not None and not self._idle.done():
            self._idle.set_result(None)
        if self._started_hooks:
            self._started_hooks = False
            for hook in reversed(self._shutdown):
                try:
                    await _call_hook(hook)
                except Exception:
                    log.exception("shutdown hook %r failed", hook)

    async def close(self, grace: float | None = None) -> None:
        """Stop consuming (if started), then close the publishing connection."""
        await self.stop(grace)
        await self._publisher.close()
        if self._revocation_check is not None:
            await self._revocation_check.store.close()  # its client belongs to this loop; reopened on use
        for executor in self._executors.values():
            executor.shutdown(wait=False, cancel_futures=True)
        self._executors.clear()

    @property
    def reconnects(self) -> int:
        """How many times the consumer reconnected since it started (for tests and health checks)."""
        return self._consumer.reconnects if self._consumer is not None else 0

