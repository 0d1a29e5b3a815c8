"""A broker that blocks publishers (memory alarm) on the disposable node: ``when_blocked`` decides.

``"fail"`` raises ``PublishBlockedError`` at once and sends nothing; ``"wait"`` holds the publish
in the client and sends it when the alarm clears, inside the confirm timeout. Consumers keep
consuming and acking throughout (the alarm blocks publishing only).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from eventbus import EventBus, PublishBlockedError

from ._broker import FaultBroker
from ._events import CONTRACT, event, until
from .conftest import Tally, fast_settings


def _publishing_connection(bus: EventBus) -> Any:
    return bus._publisher.transport._connection  # type: ignore[attr-defined]  # white box: the connection the broker blocked (lean transport)


async def _started_consumer(service: str, url: str, handled: list[str]) -> EventBus:
    consumer = EventBus(fast_settings(service, url))
    consumer.subscribe(CONTRACT.model)(lambda e, ctx: handled.append(ctx.id))
    await consumer.start()
    return consumer


async def test_fail_fast_raises_at_once_sends_nothing_and_consumers_go_on(
    healthy_broker: FaultBroker, service: str, tally: Tally
) -> None:
    handled: list[str] = []
    consumer = await _started_consumer(service, healthy_broker.url, handled)
    await consumer.stop()  # the queue exists; fill it before the alarm, consume during it
    publisher = EventBus(fast_settings("fault-blocked-publisher", healthy_broker.url, when_blocked="fail",
                                       confirm_timeout=30.0))
    try:
        before = await publisher.publish_many([event(f"conv_before_{n}") for n in range(50)])
        await asyncio.to_thread(healthy_broker.block_publishers)
        # RabbitMQ says connection.blocked when the first publish reaches it during the alarm:
        # that one fails at once (it may still be stored later), every later one is not even sent
        started = time.monotonic()
        try:
            await publisher.publish(event("conv_first_in_alarm"), event_id="evt-first-in-alarm")
            raise AssertionError("a publish while blocked with when_blocked='fail' returned")
        except PublishBlockedError as exc:
            assert "may still be stored" in str(exc)
        try:
            await publisher.publish(event("conv_refused"), event_id="evt-refused")
            raise AssertionError("a publish while blocked with when_blocked='fail' returned")
        except PublishBlockedError as exc:
            refused_after = time.monotonic() - started
            assert exc.event_id == "evt-refused" and "not sent" in str(exc)
        await consumer.start()  # consumers keep consuming and acking during the alarm
        await until(lambda: set(before) <= set(handled), what="the backlog consumed during the alarm")
        await asyncio.to_thread(healthy_broker.unblock_publishers)
        await until(lambda: not _publishing_connection(publisher).blocked, timeout=30, what="connection.unblocked")
        after = await publisher.publish(event("conv_after"))
        await until(lambda: after in handled, what="the event after the alarm")
    finally:
        await publisher.close()
        await consumer.close()
    assert "evt-refused" not in handled
    tally.published, tally.handled = 51, len(set(before) & set(handled)) + (after in handled)
    tally.notes.update(refused_after_s=round(refused_after, 3))


async def test_waiting_holds_the_publish_until_the_alarm_clears(
    healthy_broker: FaultBroker, service: str, tally: Tally
) -> None:
    handled: list[str] = []
    consumer = await _started_consumer(service, healthy_broker.url, handled)
    publisher = EventBus(fast_settings("fault-blocked-publisher", healthy_broker.url, confirm_timeout=60.0))
    try:
        first = await publisher.publish(event("conv_first"))
        await asyncio.to_thread(healthy_broker.block_publishers)
        sent = asyncio.create_task(publisher.publish(event("conv_sent"), event_id="evt-sent"))
        await until(lambda: _publishing_connection(publisher).blocked, timeout=30, what="connection.blocked")
        held = asyncio.create_task(publisher.publish(event("conv_held"), event_id="evt-held"))  # kept in the client
        await asyncio.sleep(1.0)
        assert not sent.done() and not held.done()  # waiting, not failed
        assert not {"evt-sent", "evt-held"} & set(handled)
        await asyncio.to_thread(healthy_broker.unblock_publishers)
        assert await asyncio.wait_for(sent, 30) == "evt-sent"
        assert await asyncio.wait_for(held, 30) == "evt-held"
        await until(lambda: {first, "evt-sent", "evt-held"} <= set(handled), what="the held events delivered")
    finally:
        await publisher.close()
        await consumer.close()
    tally.published, tally.handled = 3, len({first, "evt-sent", "evt-held"} & set(handled))
