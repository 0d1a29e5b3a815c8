"""A TCP proxy between client and broker resets, stalls and blackholes connections; plus the traps
other clients fell into: acks on a new channel after a reconnect (aio-pika#98), a publish that hangs
forever (aio-pika#46), heartbeats starved by slow handlers (pika#93)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from eventbus import (
    ConnectionFailedError,
    EventBus,
    EventBusError,
    EventContext,
    PublishError,
    PublishTimeoutError,
    SyncEventBus,
)

from ._broker import FaultBroker
from ._events import CONTRACT, Publishing, depth, event, until
from ._proxy import FaultProxy
from .conftest import Tally, fast_settings


async def _consumer(service: str, url: str, handled: list[str], **changes: Any) -> EventBus:
    bus = EventBus(fast_settings(service, url, **changes))
    bus.subscribe(CONTRACT.model)(lambda event, ctx: handled.append(ctx.id))
    await bus.start()
    return bus


async def test_proxy_resets_stalls_and_blackholes(fault_broker: FaultBroker, proxy: FaultProxy, service: str,
                                                 tally: Tally) -> None:
    handled: list[str] = []
    consumer = await _consumer(service, proxy.url(), handled)
    publisher = EventBus(fast_settings("fault-publisher", proxy.url(), confirm_timeout=3.0, reconnect_window=2.0))
    publishing = Publishing(publisher, lanes=4)
    timings: dict[str, float] = {}
    try:
        for round_ in range(2):  # connection resets: both sides see a RST
            mark = publishing.count()
            await until(lambda: publishing.count() >= mark + 200, what=f"publishing before reset {round_}")  # noqa: B023
            proxy.reset()
            # The consumer is back before the next fault, so the stall below meets a live connection.
            await until(lambda: consumer.reconnects >= round_ + 1, what=f"consumer reconnected after reset {round_}")  # noqa: B023
        mark = publishing.count()
        await until(lambda: publishing.count() >= mark + 200, what="publishing after the resets")
        await publishing.stop()

        # Stalled path: nothing arrives, nothing fails. A publish must still end (aio-pika#46).
        proxy.stall()
        started = time.monotonic()
        with pytest.raises(PublishTimeoutError):
            await publisher.publish(event("conv_stalled"), event_id="evt-stalled")
        timings["stalled_publish_raised_after_s"] = time.monotonic() - started
        # Blackhole: new connections are accepted and never answered; connecting gives up.
        proxy.blackhole()
        started = time.monotonic()
        with pytest.raises((PublishError, ConnectionFailedError)):
            await publisher.publish(event("conv_blackholed"), event_id="evt-blackholed")
        timings["blackholed_publish_raised_after_s"] = time.monotonic() - started
        await asyncio.sleep(10)  # long enough for the consumer's heartbeat to give up on its connection
        proxy.heal()
        after = Publishing(publisher, lanes=2, prefix="healed")
        await until(lambda: after.count() >= 100, timeout=90, what="publishing after healing")
        await after.stop()
        confirmed = publishing.confirmed | after.confirmed
        failed = {**publishing.failed, **after.failed, "evt-stalled": "timeout", "evt-blackholed": "connect"}
        await until(lambda: confirmed <= set(handled), timeout=90, what="every confirmed id handled")
    finally:
        proxy.heal()
        await publishing.stop()
        await publisher.close()
        reconnects = consumer.reconnects
        await consumer.close()
    lost = confirmed - set(handled)
    assert not lost
    assert reconnects >= 3  # two resets and the stall
    tally.published, tally.handled, tally.lost = len(confirmed), len(set(handled)), len(lost)
    tally.notes.update(publish_raised=len(failed), raised_but_stored=len(set(failed) & set(handled)),
                       consumer_reconnects=reconnects, **{k: round(v, 1) for k, v in timings.items()})


def test_sync_publish_on_a_stalled_connection_raises(fault_broker: FaultBroker, proxy: FaultProxy, service: str,
                                                     tally: Tally) -> None:
    """pika has no confirm timeout; the heartbeat notices the dead peer and the publish raises."""
    settings = fast_settings(service, proxy.url(), heartbeat=1, reconnect_window=1.0)
    with SyncEventBus(settings) as bus:
        bus.declare_exchanges([CONTRACT])
        proxy.stall()
        started = time.monotonic()
        with pytest.raises(EventBusError):
            bus.publish(event("conv_sync_stalled"))
        waited = time.monotonic() - started
    proxy.heal()
    tally.notes.update(stalled_sync_publish_raised_after_s=round(waited, 1))


async def test_an_ack_due_after_a_reconnect_is_not_sent_on_the_new_channel(
    healthy_broker: FaultBroker, service: str, tally: Tally
) -> None:
    """aio-pika#98: a handler still running when the connection drops must not ack its stale delivery
    tag on the new channel (the broker would close it: PRECONDITION_FAILED unknown delivery tag)."""
    started: list[str] = []
    finished: list[str] = []
    bus = EventBus(fast_settings(service, healthy_broker.url))

    @bus.subscribe(CONTRACT.model)
    async def slow(event: Any, ctx: EventContext) -> None:
        started.append(ctx.id)
        if event.conversation_id == "conv_slow":
            await asyncio.sleep(1.5)
        finished.append(ctx.id)

    await bus.start()
    try:
        slow_id = await bus.publish(event("conv_slow"))
        await until(lambda: slow_id in started, what="the slow handler to start")
        await asyncio.to_thread(healthy_broker.close_all_connections)
        await until(lambda: slow_id in finished, timeout=60, what="the slow event handled after the reconnect")
        later = await bus.publish(event("conv_later"))
        await until(lambda: later in finished, what="an event after the reconnect")
        await asyncio.sleep(2)  # a stale ack would close the channel now and force a second reconnect
        reconnects = bus.reconnects
    finally:
        await bus.close()
    assert reconnects == 1
    tally.published, tally.handled = 2, len({slow_id, later} & set(finished))
    tally.notes.update(slow_started=started.count(slow_id), consumer_reconnects=reconnects)


def test_sync_handler_finishing_after_a_reconnect_does_not_ack_on_the_new_channel(
    healthy_broker: FaultBroker, service: str, tally: Tally
) -> None:
    finished: list[str] = []
    with SyncEventBus(fast_settings(service, healthy_broker.url)) as bus:

        @bus.subscribe(CONTRACT.model)
        def slow(event: Any, ctx: EventContext) -> None:
            if event.conversation_id == "conv_sync_slow" and ctx.redelivered is False:
                healthy_broker.close_all_connections()  # the connection dies while we work
                time.sleep(0.5)
            finished.append(ctx.id)

        bus.start()
        slow_id = bus.publish(event("conv_sync_slow"))
        bus.run(until=lambda: finished.count(slow_id) >= 2, timeout=60)
        later = bus.publish(event("conv_sync_later"))
        bus.run(until=lambda: later in finished, timeout=30)
        reconnects = bus.reconnects
    assert finished.count(slow_id) == 2  # once unacked on the dead channel, once redelivered and acked
    assert reconnects == 1
    tally.published, tally.handled = 2, len({slow_id, later} & set(finished))
    tally.notes.update(consumer_reconnects=reconnects)


def burn_cpu(event: Any, ctx: EventContext) -> str:
    """Pure-Python CPU work for 3 s: module-level, so it can run in a process pool too."""
    end = time.monotonic() + 3
    while time.monotonic() < end:
        sum(range(1000))
    return ctx.id


@pytest.mark.parametrize("executor", ["thread", "process"])
async def test_cpu_bound_handlers_do_not_starve_heartbeats(healthy_broker: FaultBroker, service: str,
                                                          executor: str, tally: Tally) -> None:
    """pika#93: with 1 s heartbeats a 3 s CPU-bound handler would get the connection closed if it
    ran on the I/O loop; in a thread or a process it does not, and its ack goes through."""
    handled: list[str] = []

    async def record(call_next: Any, event: Any, ctx: EventContext) -> None:  # middleware, in this process
        handled.append(await call_next(event, ctx))

    bus = EventBus(fast_settings(service, healthy_broker.url, heartbeat=1), middleware=[record])
    bus.subscribe(CONTRACT.model, executor=executor)(burn_cpu)
    await bus.start()
    queue = f"{service}.{CONTRACT.type}"
    try:
        event_id = await bus.publish(event(f"conv_cpu_{executor}"))
        await until(lambda: event_id in handled, what="the CPU-bound handler")
        reconnects = bus.reconnects
    finally:
        await bus.close(grace=5)
    assert handled == [event_id] and reconnects == 0
    assert depth(healthy_broker.url, queue) == 0  # acked; an unacked delivery would be back in the queue
    tally.published, tally.handled = 1, len(handled)
    tally.notes.update(executor=executor, consumer_reconnects=reconnects)


def test_a_slow_sync_handler_keeps_the_pika_connection_alive(healthy_broker: FaultBroker, service: str,
                                                            tally: Tally) -> None:
    handled: list[str] = []
    with SyncEventBus(fast_settings(service, healthy_broker.url, heartbeat=1)) as bus:
        bus.subscribe(CONTRACT.model)(lambda event, ctx: handled.append(burn_cpu(event, ctx)))
        bus.start()
        event_id = bus.publish(event("conv_sync_cpu"))
        bus.run(until=lambda: event_id in handled, timeout=30)
        bus.run(timeout=1)  # a redelivery would show up now
        reconnects = bus.reconnects
    assert handled == [event_id] and reconnects == 0
    tally.published, tally.handled = 1, len(handled)
    tally.notes.update(consumer_reconnects=reconnects)
