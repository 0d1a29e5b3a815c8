"""``SyncEventBus`` as a blocking facade over ``EventBus``: the same surface (middleware, hooks, tap),
sync handlers in the handler thread pool, and ``run()`` that stops on SIGTERM and drains."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from typing import Any

import pytest

from eventbus import BusSettings, ConfigurationError, EventBus, EventContext, SyncEventBus
from eventbus_contracts import REGISTRY

from ..conftest import RawBroker

pytestmark = pytest.mark.broker

CONTRACT = REGISTRY.get("chat.conversation.ended.v1")
EXAMPLE = CONTRACT.schema["examples"][0]


def _event(conversation_id: str) -> Any:
    return CONTRACT.validate_python({**EXAMPLE, "conversation_id": conversation_id})


def test_middleware_of_both_kinds_and_hooks_wrap_sync_handlers_in_their_thread(
    settings: BusSettings, raw: RawBroker
) -> None:
    seen: list[tuple[str, Any]] = []

    def timing(call_next: Any, event: Any, context: EventContext) -> Any:  # a plain layer: in the thread
        seen.append(("sync layer in", threading.current_thread().name))
        result = call_next(event, context)
        seen.append(("sync layer out", event.conversation_id))
        return result

    async def tracing(call_next: Any, event: Any, context: EventContext) -> Any:  # an async layer: on the loop
        seen.append(("async layer", context.id))
        return await call_next(event, context)

    with SyncEventBus(settings, middleware=[timing]) as bus:
        bus.on_startup(lambda: seen.append(("startup", bus.declare_exchanges([CONTRACT]))))  # may use the bus
        bus.on_shutdown(lambda: seen.append(("shutdown", None)))

        @bus.subscribe(CONTRACT.model, middleware=[tracing])
        def handle(event: Any) -> None:
            seen.append(("handler", threading.current_thread().name))

        bus.start()
        event_id = bus.publish(_event("conv_layers"))
        bus.run(until=lambda: any(step == "sync layer out" for step, _ in seen), timeout=15)
        bus.stop()
        bus.run()  # drains, runs the shutdown hooks and returns
    steps = [step for step, _ in seen]
    assert steps == ["startup", "async layer", "sync layer in", "handler", "sync layer out", "shutdown"]
    values = dict(seen)
    assert values["startup"] == [CONTRACT.exchange]
    assert values["async layer"] == event_id and values["sync layer out"] == "conv_layers"
    assert values["sync layer in"] == values["handler"] and values["handler"].startswith("eventbus-handler")


def test_a_plain_layer_around_an_async_handler_is_refused_when_registering(settings: BusSettings) -> None:
    bus = SyncEventBus(settings, middleware=[lambda call_next, event, context: call_next(event, context)])

    async def handle(event: Any) -> None: ...

    with pytest.raises(ConfigurationError, match="async def layer"):
        bus.subscribe(CONTRACT.model)(handle)
    assert bus.subscriptions == []
    bus.close()


def _publish_until(bus: SyncEventBus, stop: threading.Event, conversation_id: str) -> None:
    """Publish every 100 ms until told: the tap's queue is bound some time after it starts."""
    while not stop.wait(0.1):
        bus.publish(_event(conversation_id))


def test_sync_and_async_taps_see_a_copy_without_taking_it(settings: BusSettings, raw: RawBroker) -> None:
    with SyncEventBus(settings) as bus:
        consumed: list[str] = []
        bus.subscribe(CONTRACT.model)(lambda event, ctx: consumed.append(ctx.id))
        bus.start()
        stop = threading.Event()
        publisher = threading.Thread(target=_publish_until, args=(bus, stop, "conv_tapped"))
        publisher.start()
        try:
            tapped = next(m for m in bus.tap(CONTRACT.routing_key, [CONTRACT.exchange], timeout=15)
                          if m.headers.get("cloudEvents_source") == settings.source)

            async def tap_async() -> Any:
                async with EventBus(settings) as other:
                    async for message in other.tap("chat.#", ["chat"], timeout=15):
                        if message.headers.get("cloudEvents_source") == settings.source:
                            return message
                return None

            tapped_async = asyncio.run(tap_async())
        finally:
            stop.set()
            publisher.join()
        bus.run(until=lambda: tapped.headers["cloudEvents_id"] in consumed, timeout=15)
    assert tapped.exchange == CONTRACT.exchange and tapped.routing_key == CONTRACT.routing_key
    assert tapped.content_type == "application/json" and b"conv_tapped" in tapped.body
    assert tapped_async is not None and tapped_async.routing_key == CONTRACT.routing_key
    assert tapped.headers["cloudEvents_id"] in consumed  # the service still got the one the tap saw


def test_run_stops_on_sigterm_drains_and_restores_the_signal_handler(settings: BusSettings, raw: RawBroker) -> None:
    started, finished = threading.Event(), []
    previous = signal.getsignal(signal.SIGTERM)
    with SyncEventBus(settings.with_(shutdown_grace=10)) as bus:

        @bus.subscribe(CONTRACT.model)
        def slow(event: Any, ctx: EventContext) -> None:
            started.set()
            threading.Event().wait(0.5)
            finished.append(ctx.id)

        bus.start()
        event_id = bus.publish(_event("conv_sigterm"))

        def kill_once_running() -> None:
            started.wait(15)
            while signal.getsignal(signal.SIGTERM) is previous:  # run() has not installed its handler yet
                threading.Event().wait(0.01)
            os.kill(os.getpid(), signal.SIGTERM)

        killer = threading.Thread(target=kill_once_running, daemon=True)
        killer.start()
        bus.run(timeout=30)  # returns once SIGTERM arrived and the slow handler finished
        killer.join()
        assert finished == [event_id]  # drained: finished within the grace period, and acked
    assert signal.getsignal(signal.SIGTERM) is previous
    assert raw.depth(f"{settings.service}.{CONTRACT.type}") == 0


def test_a_blocking_call_from_the_loop_thread_is_refused_instead_of_hanging() -> None:
    from eventbus._loop_thread import LoopThread

    runner = LoopThread("eventbus-test-loop")

    async def blocking_call_inside() -> None:
        runner.call(asyncio.sleep(0))

    try:
        with pytest.raises(RuntimeError, match="wait for itself"):
            runner.call(blocking_call_inside())
        assert runner.call(asyncio.sleep(0, result=7)) == 7  # the loop is still fine
    finally:
        runner.close()
