"""Ordering on the wire: the partitionkey and sequence attributes from publish to EventContext, and
queues with one active consumer (docs/ordering.md)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pika
import pika.exceptions
import pytest

from eventbus import BusSettings, EventBus, EventContext, SyncEventBus
from eventbus._envelope import ordering_extensions, parse_sequence
from eventbus._topology import queue_specs
from eventbus_contracts import FriendshipStatusChangedV1

from ..conftest import RawBroker, wait_until

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
QUEUE_TYPE = "context.friendship.status_changed.v1"


def change(n: int) -> FriendshipStatusChangedV1:
    return FriendshipStatusChangedV1(
        user_a="a", user_b="b", previous_status="stranger", status="friend", score=float(n), changed_at=T0,
        cause="conversation", conversation_id=f"conv_{n}",
    )


def test_sequences_are_padded_decimals_that_compare_alike_as_text_and_as_numbers() -> None:
    assert ordering_extensions("a/b", 7) == {"partitionkey": "a/b", "sequence": "00000000000000000007"}
    assert ordering_extensions(None, None) == {}
    texts = [ordering_extensions(None, n)["sequence"] for n in (1, 9, 10, 99, 100, 2**63)]
    assert texts == sorted(texts)
    assert [parse_sequence(t) for t in texts] == [1, 9, 10, 99, 100, 2**63]
    assert parse_sequence("12") == 12, "an unpadded sequence from another producer reads the same"
    assert parse_sequence(None) is parse_sequence("") is parse_sequence("12a") is parse_sequence("-1") is None
    for bad in (-1, 10**20, 1.5, True):
        with pytest.raises(ValueError, match="sequence"):
            ordering_extensions(None, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="partition_key"):
        ordering_extensions("", None)


def test_only_queues_that_ask_for_it_get_a_single_active_consumer() -> None:
    plain, _ = queue_specs("svc.t.v1", "quorum", 20)
    single, dead_letters = queue_specs("svc.t.v1", "quorum", 20, single_active_consumer=True)
    assert "x-single-active-consumer" not in plain.arguments
    assert single.arguments == {**plain.arguments, "x-single-active-consumer": True}
    assert dead_letters.arguments == {"x-queue-type": "quorum"}


@pytest.mark.broker
async def test_partition_key_and_sequence_travel_from_publish_to_the_handler(
    settings: BusSettings, raw: RawBroker
) -> None:
    bus = EventBus(settings)
    seen: list[EventContext] = []

    @bus.subscribe(FriendshipStatusChangedV1)
    async def record(event: FriendshipStatusChangedV1, ctx: EventContext) -> None:
        if ctx.source == settings.source:
            seen.append(ctx)

    await bus.start()
    try:
        await bus.publish(change(1), partition_key="a/b", sequence=41)
        await bus.publish(change(2))
        with SyncEventBus(settings) as publisher:
            await asyncio.to_thread(publisher.publish, change(3), partition_key="a/b", sequence=42)
        assert await asyncio.to_thread(wait_until, lambda: len(seen) == 3)
    finally:
        await bus.close()
    by_sequence = {ctx.headers.get("cloudEvents_sequence"): ctx for ctx in seen}
    assert sorted((c.partition_key or "", c.sequence or 0) for c in seen) == [("", 0), ("a/b", 41), ("a/b", 42)]
    assert by_sequence["00000000000000000041"].sequence == 41
    with pytest.raises(ValueError, match="sequence"):
        await EventBus(settings).publish(change(4), sequence=-1)


@pytest.mark.broker
async def test_one_active_consumer_takes_every_delivery_while_it_lives(
    settings: BusSettings, raw: RawBroker
) -> None:
    """Two replicas subscribe with single_active_consumer=True: all events go to one of them."""
    handled: dict[int, list[float]] = {0: [], 1: []}
    buses = []
    for replica in (0, 1):
        bus = EventBus(settings)

        @bus.subscribe(FriendshipStatusChangedV1, single_active_consumer=True)
        async def record(event: FriendshipStatusChangedV1, ctx: EventContext, replica: int = replica) -> None:
            if ctx.source == settings.source:
                handled[replica].append(event.score)

        buses.append(bus)
    for bus in buses:
        await bus.start()
    try:
        for n in range(30):
            await buses[0].publish(change(n))
        assert await asyncio.to_thread(wait_until, lambda: len(handled[0]) + len(handled[1]) == 30)
    finally:
        for bus in buses:
            await bus.close()
    assert sorted(len(h) for h in handled.values()) == [0, 30], handled
    # the queue was declared with the argument: declaring it without is refused by the broker
    queue = f"{settings.service}.{QUEUE_TYPE}"
    channel = raw.connection.channel()
    plain, _ = queue_specs(queue, settings.queue_type, settings.delivery_limit)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="x-single-active-consumer"):
        channel.queue_declare(queue, durable=True, arguments=plain.arguments)
