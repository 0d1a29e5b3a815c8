"""The broker closes every connection, restarts, blocks publishers: publishers confirm or raise,
consumers come back by themselves (aio-pika#231), nothing confirmed is lost."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from eventbus import (
    EventBus,
    EventBusError,
    EventContext,
    PublishBlockedError,
    RetryLater,
    RetryPolicy,
    SyncEventBus,
    TopologyMismatchError,
    UnroutableError,
)
from eventbus_contracts import REGISTRY

from ._broker import FaultBroker
from ._events import CONTRACT, Publishing, event, until
from .conftest import Tally, fast_settings


async def test_connections_closed_and_broker_restarted_during_publish_and_consume(
    healthy_broker: FaultBroker, service: str, tally: Tally
) -> None:
    consumer = EventBus(fast_settings(service, healthy_broker.url))
    handled: list[str] = []

    @consumer.subscribe(CONTRACT.model)
    async def handle(event: Any, ctx: EventContext) -> None:
        handled.append(ctx.id)

    await consumer.start()
    # A short reconnect window, so that publishes during the restart raise instead of riding it out.
    publisher = EventBus(fast_settings("fault-publisher", healthy_broker.url, reconnect_window=1.0))
    publishing = Publishing(publisher)
    try:
        await until(lambda: publishing.count() >= 300, what="publishing under way")
        await asyncio.to_thread(healthy_broker.close_all_connections)
        mark = publishing.count()
        await until(lambda: publishing.count() >= mark + 300, what="publishing after connections were closed")
        await asyncio.to_thread(healthy_broker.stop_app)
        await asyncio.sleep(1)  # publishes now fail or wait for the broker
        await asyncio.to_thread(healthy_broker.start_app)
        mark = publishing.count()
        await until(lambda: publishing.count() >= mark + 300, timeout=90, what="publishing after the restart")
        await publishing.stop()
        await until(lambda: publishing.confirmed <= set(handled), timeout=90, what="every confirmed id handled")
    finally:
        await publishing.stop()
        await publisher.close()
        reconnects = consumer.reconnects
        await consumer.close()
    lost = publishing.confirmed - set(handled)
    assert not lost
    assert reconnects >= 2  # consumers restored twice, by themselves
    stored_anyway = set(publishing.failed) & set(handled)
    tally.published, tally.handled, tally.lost = len(publishing.confirmed), len(set(handled)), len(lost)
    tally.notes.update(publish_raised=len(publishing.failed), raised_but_stored=len(stored_anyway),
                       consumer_reconnects=reconnects, handled_twice=len(handled) - len(set(handled)))


async def test_a_retry_waiting_in_the_delay_queues_survives_a_broker_restart(
    healthy_broker: FaultBroker, service: str, tally: Tally
) -> None:
    bus = EventBus(fast_settings(service, healthy_broker.url))
    attempts: list[tuple[int, float]] = []

    @bus.subscribe(CONTRACT.model, retry=RetryPolicy(max_attempts=5))
    async def flaky(event: Any, ctx: EventContext) -> None:
        attempts.append((ctx.attempt, time.monotonic()))
        if ctx.attempt == 1:
            raise RetryLater(8)

    await bus.start()
    try:
        await bus.publish(event("conv_restart_retry"))
        await until(lambda: len(attempts) == 1, what="the first attempt")
        await asyncio.to_thread(healthy_broker.stop_app)
        await asyncio.to_thread(healthy_broker.start_app)
        await until(lambda: len(attempts) == 2, timeout=60, what="the retry after the restart")
    finally:
        await bus.close()
    assert [a for a, _ in attempts] == [1, 2]
    assert attempts[1][1] - attempts[0][1] >= 8 - 0.1
    tally.published, tally.handled = 1, 1
    tally.notes.update(attempts=len(attempts))


async def test_a_blocked_broker_makes_publishers_raise_within_the_bound_while_consumers_go_on(
    healthy_broker: FaultBroker, service: str, tally: Tally
) -> None:
    """Under a memory alarm publishes raise after the bound; a failed handler whose retry copy
    cannot be published is handed back to its queue (never acked unsettled) and retried after."""
    consumer = EventBus(fast_settings(service, healthy_broker.url, confirm_timeout=1.0))
    handled: list[str] = []
    runs: list[int] = []
    alarm = asyncio.Event()

    @consumer.subscribe(CONTRACT.model, retry=RetryPolicy(max_attempts=3))
    async def handle(event: Any, ctx: EventContext) -> None:
        if event.conversation_id == "conv_fails_during_alarm":
            runs.append(ctx.attempt)
            if ctx.attempt == 1:
                await alarm.wait()  # fail once the alarm is on, so that the retry copy cannot be published
                raise RuntimeError("fails once")
        handled.append(ctx.id)

    await consumer.start()
    publisher = EventBus(fast_settings("fault-publisher", healthy_broker.url, confirm_timeout=2.0))
    try:
        before = await publisher.publish(event("conv_before_alarm"))
        await until(lambda: before in handled, what="the first event")
        flaky = await publisher.publish(event("conv_fails_during_alarm"))
        await asyncio.to_thread(healthy_broker.block_publishers)
        alarm.set()
        started = time.monotonic()
        with pytest.raises(PublishBlockedError, match="blocked publishing"):
            await publisher.publish(event("conv_during_alarm"), event_id="evt-during-alarm")
        waited = time.monotonic() - started
        sync_waited = await asyncio.to_thread(_sync_publish_while_blocked, healthy_broker.url)
        await until(lambda: runs.count(1) >= 2, what="the failed delivery handed back while its retry is blocked")
        await asyncio.to_thread(healthy_broker.unblock_publishers)
        after = await publisher.publish(event("conv_after_alarm"))
        await until(lambda: after in handled and flaky in handled, what="events after the alarm")
    finally:
        await publisher.close()
        await consumer.close()
    assert runs[-1] == 2 and set(runs) == {1, 2}
    tally.published, tally.handled = 3, len({before, flaky, after} & set(handled))
    tally.notes.update(blocked_publish_raised_after_s=round(waited, 1),
                       blocked_sync_publish_raised_after_s=round(sync_waited, 1),
                       handed_back_while_blocked=runs.count(1) - 1)


def _sync_publish_while_blocked(url: str) -> float:
    with SyncEventBus(fast_settings("fault-sync-publisher", url, confirm_timeout=2.0)) as bus:
        started = time.monotonic()
        with pytest.raises(PublishBlockedError):
            bus.publish(event("conv_sync_during_alarm"))
        return time.monotonic() - started


def test_sync_publisher_and_consumer_ride_through_closed_connections(
    healthy_broker: FaultBroker, service: str, tally: Tally
) -> None:
    handled: list[str] = []
    confirmed: set[str] = set()
    failed: set[str] = set()
    with SyncEventBus(fast_settings(service, healthy_broker.url)) as consumer:
        consumer.subscribe(CONTRACT.model)(lambda event, ctx: handled.append(ctx.id))
        consumer.start()
        stop = threading.Event()

        def publish() -> None:
            with SyncEventBus(fast_settings("fault-sync-publisher", healthy_broker.url)) as publisher:
                n = 0
                while not stop.is_set():
                    n += 1
                    try:
                        confirmed.add(publisher.publish(event(f"conv_sync_{n}"), event_id=f"sync-{n}"))
                    except EventBusError:
                        failed.add(f"sync-{n}")

        thread = threading.Thread(target=publish)
        thread.start()
        try:
            consumer.run(until=lambda: len(handled) >= 200, timeout=30)
            healthy_broker.close_all_connections()
            mark = len(confirmed)
            consumer.run(until=lambda: len(confirmed) >= mark + 200, timeout=60)
        finally:
            stop.set()
            thread.join()
        consumer.run(until=lambda: confirmed <= set(handled), timeout=60)
        reconnects = consumer.reconnects
    lost = confirmed - set(handled)
    assert not lost
    assert reconnects >= 1
    tally.published, tally.handled, tally.lost = len(confirmed), len(set(handled)), len(lost)
    tally.notes.update(publish_raised=len(failed), consumer_reconnects=reconnects)


async def test_unroutable_publishes_raise_and_are_never_reported_as_sent(
    healthy_broker: FaultBroker, service: str, tally: Tally
) -> None:
    """aio-pika#411: an event nobody subscribes to must raise, in both APIs and in a batch."""
    lonely = REGISTRY.get("context.candidates.updated.v1")
    data = lonely.validate_python(lonely.schema["examples"][0])
    async with EventBus(fast_settings(service, healthy_broker.url)) as bus:
        with pytest.raises(UnroutableError):
            await bus.publish(data)
        with pytest.raises(UnroutableError):
            await bus.publish_many([data, data])
    with SyncEventBus(fast_settings(service, healthy_broker.url)) as sync_bus, pytest.raises(UnroutableError):
        sync_bus.publish(data)
    tally.notes.update(unroutable_raised=4)


async def test_a_queue_redeclared_with_other_arguments_is_an_exact_error_not_a_crash_loop(
    healthy_broker: FaultBroker, service: str, tally: Tally
) -> None:
    """aio-pika#667: after a reconnect the consumer re-declares; a changed queue stops it with the difference."""
    import pika

    queue = f"{service}.{CONTRACT.type}"
    bus = EventBus(fast_settings(service, healthy_broker.url))
    bus.subscribe(CONTRACT.model)(lambda event: None)
    await bus.start()
    runner = asyncio.create_task(bus.run())
    connection = pika.BlockingConnection(pika.URLParameters(healthy_broker.url))
    channel = connection.channel()
    channel.queue_delete(queue)
    channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "classic"})
    connection.close()
    await asyncio.to_thread(healthy_broker.close_all_connections)
    with pytest.raises(TopologyMismatchError, match="x-queue-type") as caught:
        await asyncio.wait_for(runner, 60)
    await bus.close()
    assert "classic" in caught.value.detail and "quorum" in caught.value.detail
    tally.notes.update(error=f"{caught.value.entity}: x-queue-type")


async def test_a_queue_from_before_the_delivery_limit_is_used_with_a_warning(
    healthy_broker: FaultBroker, service: str, tally: Tally, caplog: pytest.LogCaptureFixture
) -> None:
    """Queues declared by the spine version (only x-queue-type) keep working after the upgrade."""
    import pika

    queue = f"{service}.{CONTRACT.type}"
    connection = pika.BlockingConnection(pika.URLParameters(healthy_broker.url))
    connection.channel().queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    connection.close()
    handled: list[str] = []
    bus = EventBus(fast_settings(service, healthy_broker.url))
    bus.subscribe(CONTRACT.model)(lambda event, ctx: handled.append(ctx.id))
    await bus.start()
    try:
        event_id = await bus.publish(event("conv_legacy_queue"))
        await until(lambda: event_id in handled, what="the event on the old queue")
    finally:
        await bus.close()
    assert any("without a delivery limit" in r.getMessage() for r in caplog.records)
    tally.published = tally.handled = 1
