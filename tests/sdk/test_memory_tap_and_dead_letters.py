"""``EventBus.tap`` and ``DeadLetters`` on the in-memory broker of ``eventbus.testing``: "this
handler parks, and a replay succeeds" tested in milliseconds, no RabbitMQ."""

from __future__ import annotations

import asyncio

from eventbus import BusSettings, DeadLetters, EventBus, EventContext, RetryPolicy, TappedMessage
from eventbus.testing import MemoryBroker, in_memory, memory_bus
from eventbus_contracts import REGISTRY, ConversationEndedV1

ENDED = REGISTRY.get("chat.conversation.ended.v1")
DLQ = f"test.{ENDED.type}.dlq"


def _ended(conversation_id: str) -> ConversationEndedV1:
    return ENDED.validate_python({**ENDED.schema["examples"][0], "conversation_id": conversation_id})


async def _parking_bus(broker: MemoryBroker, handled: list[str], down: list[bool]) -> EventBus:
    bus = memory_bus(broker)

    def handler(event: ConversationEndedV1, context: EventContext) -> None:
        if down[0] and event.conversation_id != "c-fine":
            raise RuntimeError("the database is down")
        handled.append(event.conversation_id)

    bus.subscribe(ConversationEndedV1, retry=RetryPolicy(max_attempts=1))(handler)
    await bus.start()
    return bus


async def test_a_parked_message_is_listed_and_a_replay_succeeds() -> None:
    broker = MemoryBroker()
    handled: list[str] = []
    down = [True]
    bus = await _parking_bus(broker, handled, down)
    try:
        for conversation in ("c-1", "c-2", "c-fine"):
            await bus.publish(_ended(conversation))
        await broker.settle()
        assert handled == ["c-fine"]
        with in_memory(broker):
            dead_letters = DeadLetters(BusSettings("test"))
        with dead_letters:
            assert dead_letters.depths([DLQ, "no.such.dlq"]) == {DLQ: 2}
            total, shown = dead_letters.peek(DLQ)
            assert total == 2 and [p.error for p in shown] == ["RuntimeError: the database is down"] * 2
            assert {p.original_queue for p in shown} == {f"test.{ENDED.type}"}
            down[0] = False  # fixed: replay one, from a worker thread as a job would
            result = await asyncio.to_thread(
                dead_letters.replay, DLQ, lambda parked: b"c-2" in parked.body
            )
            assert result.scanned == 2 and len(result.replayed) == 1 and result.failed == []
            await broker.settle()
            assert handled == ["c-fine", "c-2"]
            assert dead_letters.depth(DLQ) == 1
            (copy,) = [m for m in broker.published if m.routing_key == f"test.{ENDED.type}"]
            assert copy.headers["eventbus-replays"] == 1
            assert dead_letters.purge(DLQ) == 1 and dead_letters.depth(DLQ) == 0
    finally:
        await bus.close()


async def test_a_replay_to_a_queue_that_is_gone_leaves_the_message_parked() -> None:
    broker = MemoryBroker()
    bus = await _parking_bus(broker, [], [True])
    try:
        await bus.publish(_ended("c-1"))
        await broker.settle()
        await bus.close()
        broker.delete_queue(f"test.{ENDED.type}")
        with in_memory(broker):
            dead_letters = DeadLetters(BusSettings("test"))
        with dead_letters:
            result = dead_letters.replay(DLQ, lambda parked: True)
            assert result.replayed == [] and result.failed[0][1] == f"queue 'test.{ENDED.type}' does not exist"
            assert dead_letters.depth(DLQ) == 1
    finally:
        await bus.close()


async def test_a_tap_sees_a_copy_without_taking_it() -> None:
    broker = MemoryBroker()
    handled: list[str] = []
    bus = await _parking_bus(broker, handled, [False])
    tapped: list[TappedMessage] = []

    async def watch() -> None:
        async for message in bus.tap("chat.#", [ENDED.exchange], timeout=5):
            tapped.append(message)
            if len(tapped) == 2:
                return

    watching = asyncio.create_task(watch())
    try:
        await broker.settle()
        await bus.publish(_ended("c-1"))
        await bus.publish(_ended("c-2"))
        await asyncio.wait_for(watching, 5)
        await broker.settle()
    finally:
        await bus.close()
    assert handled == ["c-1", "c-2"]  # the service still got both
    assert [m.routing_key for m in tapped] == [ENDED.routing_key] * 2
    assert b"c-1" in tapped[0].body and tapped[0].headers["cloudEvents_type"] == ENDED.type
    assert not [q for q in broker.queues() if q.startswith("eventbus.tap.")]  # deleted when it ended
