"""The blocking event bus, for scripts, CLIs and sync web apps: a facade over ``EventBus``.

``SyncEventBus`` runs an ``EventBus`` on a private event-loop thread (``_loop_thread``) and
blocks the caller until each call is done. There is one implementation of publishing,
consuming, settling (ack / retry copy / park copy), reconnecting and draining, and one AMQP
client: both APIs write and accept exactly the same messages and retry and park them the same
way, with the same middleware, start-up and shutdown hooks and taps.

Sync handlers run in a pool of ``settings.prefetch`` threads, as on ``EventBus``; the loop
thread only does I/O, so a slow handler never starves the heartbeats. Middleware comes in two
kinds: a plain function ``layer(call_next, event, context)`` wraps the handler inside its
thread (``call_next`` is a plain call); an ``async def`` layer runs on the loop, as on
``EventBus``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import signal
import threading
import time as _time
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal, TypeVar, cast, overload

from pydantic import BaseModel

from ._async_bus import EventBus, Hook, Middleware
from ._contract import EventContract
from ._dispatch import Subscription, handler_arity
from ._exceptions import ConfigurationError
from ._loop_thread import LoopThread
from ._retry import RetryPolicy
from ._revocations import DEFAULT_REVOKE_TTL, Revocations
from ._settings import BusSettings
from ._tap import TappedMessage
from .tasks import SyncTask
from .workflows import Canvas

__all__ = ["SyncEventBus", "TappedMessage"]

T = TypeVar("T")
ModelT = TypeVar("ModelT", bound=BaseModel)
Handler = Callable[..., Any]
SyncMiddleware = Callable[[Callable[[Any, Any], Any], Any, Any], Any]
"""``def layer(call_next, event, context)``: wraps a sync handler inside its thread."""

_TICK = 0.05  # how often run() looks at ``until``, its timeout and the stop flag
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _is_async(layer: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(layer)


def _layered(handler: Handler, layers: Sequence[SyncMiddleware]) -> Handler:
    """``handler`` with sync ``layers`` around it, called as ``(event, context)``."""
    wants_context = handler_arity(handler)

    def innermost(event: Any, context: Any) -> Any:
        return handler(event, context) if wants_context else handler(event)

    call: Handler = innermost
    for layer in reversed(layers):
        call = partial(layer, call)

    def layered(event: Any, context: Any) -> Any:  # a plain two-argument function for the arity check
        return call(event, context)

    return layered


def _off_the_loop(hook: Hook) -> Hook:
    """A plain hook runs in a thread, so that it may block, or call this bus, without stalling the loop."""
    if inspect.iscoroutinefunction(hook):
        return hook
    return lambda: asyncio.to_thread(hook)


class SyncEventBus:
    """Blocking twin of ``EventBus``: the same messages, retries, delays, parking, middleware and
    hooks, no event loop in the caller's code.

    ``run()`` consumes until SIGTERM/SIGINT (or ``stop()``), then drains: in-flight handlers get
    ``settings.shutdown_grace`` seconds, the rest goes back to the queue.
    """

    def __init__(self, settings: BusSettings, *, middleware: Sequence[Middleware | SyncMiddleware] = (),
                 revocations: Revocations | None = None) -> None:
        """``revocations``: the revocation store (see ``EventBus``); its connections live on this
        bus's loop thread."""
        self._settings = settings
        self._middleware = tuple(middleware)
        self._revocations = revocations
        self._registrations: list[Callable[[EventBus], Any]] = []
        self._runner = LoopThread(f"eventbus-{settings.service}")
        self._bus = self._new_bus()
        self._stale = False
        self._serving: Future[None] | None = None
        self._stop_requested = False
        self._draining = False
        self._wake = threading.Event()

    @classmethod
    def from_env(cls, service: str, **overrides: Any) -> SyncEventBus:
        """A bus for ``service`` configured by ``EVENTBUS_URL`` (see ``BusSettings.from_env``)."""
        return cls(BusSettings.from_env(service, **overrides))

    def __enter__(self) -> SyncEventBus:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def settings(self) -> BusSettings:
        return self._settings

    @settings.setter
    def settings(self, value: BusSettings) -> None:
        self._settings = value
        self._bus.settings = value

    # -- the async core on its thread ---------------------------------------------------------------

    def _new_bus(self) -> EventBus:
        bus = EventBus(self._settings, middleware=[m for m in self._middleware if _is_async(m)],
                       revocations=self._revocations)
        for register in self._registrations:
            register(bus)
        return bus

    def _core(self) -> EventBus:
        """The bus, made again (same registrations, new connections) after a fork or ``close``."""
        if self._runner.forked or self._stale:
            self._runner = LoopThread(f"eventbus-{self._settings.service}")
            self._bus, self._stale, self._serving = self._new_bus(), False, None
        return self._bus

    def _call(self, work: Callable[[EventBus], Coroutine[Any, Any, T]]) -> T:
        bus = self._core()
        return self._runner.call(work(bus))

    def _register(self, register: Callable[[EventBus], Any]) -> None:
        register(self._bus)  # mistakes are raised here, at registration
        self._registrations.append(register)

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
        return self._call(lambda bus: bus.publish(event, subject=subject, event_id=event_id, time=time,
                                                  headers=headers, delay=delay, at=at,
                                                  partition_key=partition_key, sequence=sequence))

    def publish_many(
        self, events: Iterable[BaseModel], *, subject: str | None = None, delay: float | timedelta | None = None
    ) -> list[str]:
        """Publish a batch with up to ``settings.publish_window`` confirms outstanding at once
        (pipelined, not confirm-each); same errors as ``EventBus.publish_many``."""
        return self._call(lambda bus: bus.publish_many(events, subject=subject, delay=delay))

    def request(
        self,
        event: BaseModel,
        *,
        reply: type[ModelT] | None,
        timeout: float,
        subject: str | None = None,
        headers: dict[str, Any] | None = None,
    ) -> Any:
        """Publish ``event`` as a request and block until its typed reply; see ``EventBus.request``."""
        return self._call(lambda bus: bus.request(event, reply=reply, timeout=timeout, subject=subject,
                                                  headers=headers))

    def declare_exchanges(self, contracts: Iterable[EventContract[Any]]) -> list[str]:
        """Declare the topic exchange of every contract (idempotent); returns their names."""
        return self._call(lambda bus: bus.declare_exchanges(contracts))

    def revoke(self, event_id: str, *, ttl: float | timedelta = DEFAULT_REVOKE_TTL) -> None:
        """Revoke a delayed event or a workflow step by its id; see ``EventBus.revoke``."""
        self._call(lambda bus: bus.revoke(event_id, ttl=ttl))

    def cancel(self, workflow_id: str, *, ttl: float | timedelta = DEFAULT_REVOKE_TTL) -> None:
        """Cancel a workflow's pending steps and report it; see ``EventBus.cancel``."""
        self._call(lambda bus: bus.cancel(workflow_id, ttl=ttl))

    @property
    def revoked_dropped(self) -> int:
        """How many revoked deliveries this bus dropped (see ``EventBus.revoked_dropped``)."""
        return self._bus.revoked_dropped

    def tap(
        self, pattern: str, exchanges: Iterable[str], *, timeout: float | None = None
    ) -> Iterator[TappedMessage]:
        """Yield a copy of every message routed to ``exchanges`` whose key matches ``pattern``
        (``EventBus.tap``): from a queue of its own, so it never takes messages from the services
        consuming them; it stops after ``timeout`` seconds (forever when None)."""
        tapping = self._core().tap(pattern, list(exchanges), timeout=timeout)
        messages = cast(AsyncGenerator[TappedMessage, None], tapping)

        async def following() -> TappedMessage | None:
            try:
                return await anext(messages)
            except StopAsyncIteration:
                return None

        try:
            while (message := self._runner.call(following())) is not None:
                yield message
        finally:
            with contextlib.suppress(Exception):
                self._runner.call(messages.aclose())

    # -- consuming ----------------------------------------------------------------------------

    def subscribe(
        self,
        model: type[ModelT],
        *,
        queue: str | None = None,
        binding_keys: Sequence[str] | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        executor: Literal["thread", "process"] | Executor | None = None,
        middleware: Sequence[Middleware | SyncMiddleware] = (),
        single_active_consumer: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Register ``handler(event)`` or ``handler(event, context)``; see ``EventBus.subscribe``.

        Handlers run in threads (or processes, ``executor="process"``); past ``timeout`` the
        delivery is settled as a failed attempt (retried or parked) and the late result is
        ignored, since a thread cannot be stopped from outside.
        """

        def register(handler: Handler) -> Handler:
            sync_layers = [m for m in (*self._middleware, *middleware) if not _is_async(m)]
            call = handler
            if sync_layers:
                if inspect.iscoroutinefunction(handler):
                    raise ConfigurationError(
                        f"{handler!r} is async: plain-function middleware wraps sync handlers only; "
                        "write the layer as `async def layer(call_next, event, context)`"
                    )
                if executor == "process":
                    raise ConfigurationError("plain-function middleware runs in the handler's thread; "
                                             "with executor='process' write the layer as an async def")
                call = _layered(handler, sync_layers)
            async_layers = [m for m in middleware if _is_async(m)]
            self._register(lambda bus: bus.subscribe(model, queue=queue, binding_keys=binding_keys, retry=retry,
                                                     timeout=timeout, executor=executor,
                                                     middleware=async_layers,
                                                     single_active_consumer=single_active_consumer)(call))
            return handler

        return register

    @property
    def subscriptions(self) -> list[Subscription]:
        return self._bus.subscriptions

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
        """``@bus.task``: see ``EventBus.task``; ``delay`` and ``apply_async`` block until confirmed."""

        def register(function: Callable[..., Any]) -> SyncTask[Any, Any]:
            made: list[Any] = []

            def on(bus: EventBus) -> None:
                made.append(bus.task(function, name=name, version=version, retry=retry, timeout=timeout,
                                     examples=examples))

            self._register(on)
            return SyncTask(made[0], self.publish)

        return register(fn) if fn is not None else register

    @property
    def tasks(self) -> list[Any]:
        return self._bus.tasks

    def on_startup(self, hook: Hook) -> Hook:
        """Run ``hook()`` before consuming starts: a plain function in a thread (it may use this
        bus), an ``async def`` one on the bus's loop."""
        self._register(lambda bus: bus.on_startup(_off_the_loop(hook)))
        return hook

    def on_shutdown(self, hook: Hook) -> Hook:
        """Run ``hook()`` after consuming stopped and in-flight handlers finished (as ``on_startup``)."""
        self._register(lambda bus: bus.on_shutdown(_off_the_loop(hook)))
        return hook

    @overload
    def start(self) -> None: ...

    @overload
    def start(self, canvas: Canvas, *, on_error: Canvas | None = None, workflow_id: str | None = None) -> str: ...

    def start(self, canvas: Canvas | None = None, *, on_error: Canvas | None = None,
              workflow_id: str | None = None) -> str | None:
        """Without a canvas: run the start-up hooks, declare the topology of every subscription and
        consume (in the background, on the loop thread); raises what ``EventBus.start`` raises.

        With a canvas: start that workflow (``EventBus.start``), blocking until the broker confirms;
        returns its id."""
        if canvas is not None:
            chosen = canvas
            return self._call(lambda bus: bus.start(chosen, on_error=on_error, workflow_id=workflow_id))
        self._call(lambda bus: bus.start())
        return None

    def run(self, *, until: Callable[[], bool] | None = None, timeout: float | None = None) -> None:
        """Consume until SIGTERM/SIGINT or ``stop()``, then drain and return; or until ``until()``
        turns true or ``timeout`` seconds pass, then return while consumption goes on.

        Signal handlers are installed only in the main thread and only where the application
        has not installed its own; raises if consuming cannot resume after a fault.
        """
        self.start()
        bus = self._core()
        if self._serving is None or self._serving.done():
            self._serving = self._runner.submit(bus.run())
        serving = self._serving
        deadline = None if timeout is None else _time.monotonic() + timeout
        with self._signals():
            while True:
                if self._stop_requested:
                    self._drain()
                    return
                if serving.done():
                    serving.result()  # raises what stopped consuming
                    return
                if (until is not None and until()) or (deadline is not None and _time.monotonic() >= deadline):
                    return
                self._wake.wait(_TICK)
                self._wake.clear()

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        replaced: dict[signal.Signals, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in _SIGNALS:
                if signal.getsignal(signum) in (signal.SIG_DFL, signal.default_int_handler):
                    replaced[signum] = signal.signal(signum, lambda _signum, _frame: self.stop())
        try:
            yield
        finally:
            for signum, previous in replaced.items():
                signal.signal(signum, previous)

    def _drain(self) -> None:
        self._stop_requested = False
        self._draining = True
        try:
            self._call(lambda bus: bus.stop())
        finally:
            self._draining = False

    def stop(self) -> None:
        """Ask ``run()`` to stop taking deliveries, drain (``settings.shutdown_grace``) and return.

        Safe to call from a signal handler or another thread; asked again while draining, the
        running handlers are given up at once and their deliveries go back to the queue.
        """
        if self._draining:
            self._runner.submit(self._bus.stop())  # EventBus.stop while stopping: hurry
            return
        self._stop_requested = True
        self._wake.set()

    @property
    def reconnects(self) -> int:
        """How many times the consumer reconnected since it started."""
        return self._bus.reconnects

    def close(self) -> None:
        """Stop consuming (draining as ``stop`` does), close the connections and the loop thread."""
        if self._stale:
            return
        self._stale = True
        self._stop_requested = False
        self._runner.close(self._bus.close())
