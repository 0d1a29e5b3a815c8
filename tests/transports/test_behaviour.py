"""The behaviour every transport must show (Watermill's universal pub/sub tests, for this bus).

Each case runs on the in-memory broker, the lean client and aio-pika (``conftest.harness``), so
the memory broker cannot drift from RabbitMQ and neither AMQP client from the other.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from eventbus import (
    EventContext,
    ExponentialBackoff,
    MemoryTickLedger,
    ParkMessage,
    RetryPolicy,
    Scheduler,
    UnroutableError,
)
from eventbus._topology import QueueSpec  # the spec the bus itself declares
from eventbus.transports import Locking, Properties, Topology
from eventbus_contracts import REGISTRY, ConversationEndedV1, FriendshipStatusChangedV1

from .conftest import Harness

ENDED = REGISTRY.get("chat.conversation.ended.v1")
FRIENDSHIP = REGISTRY.get("context.friendship.status_changed.v1")
EXACT = ExponentialBackoff(first=0.3, factor=2, maximum=5, jitter=0)


def _ended(conversation_id: str | None = None) -> ConversationEndedV1:
    example = ENDED.schema["examples"][0]
    return ENDED.validate_python({**example, "conversation_id": conversation_id or uuid.uuid4().hex})


def _friendship() -> FriendshipStatusChangedV1:
    return FRIENDSHIP.validate_python(FRIENDSHIP.schema["examples"][0])


async def test_round_trip(harness: Harness) -> None:
    seen: list[tuple[ConversationEndedV1, EventContext]] = []
    async with harness.bus() as bus:
        bus.subscribe(ConversationEndedV1)(lambda event, context: seen.append((event, context)))
        await bus.start()
        sent = _ended()
        event_id = await bus.publish(sent, subject="conversation/1")
        assert await harness.until(lambda: len(seen) == 1)
        event, context = seen[0]
        assert event == sent
        assert (context.id, context.type, context.subject, context.attempt) == (event_id, ENDED.type,
                                                                                "conversation/1", 1)
        assert (context.exchange, context.routing_key) == (ENDED.exchange, ENDED.routing_key)
        assert await harness.depth(context.queue) == 0


async def test_topic_routing_with_wildcards(harness: Harness) -> None:
    got: dict[str, list[str]] = {"star": [], "hash": [], "short": []}
    async with harness.bus() as bus:
        for name, keys in (("star", ["chat.*.ended.v1"]), ("hash", ["chat.#"]), ("short", ["chat.*"])):
            bus.subscribe(ConversationEndedV1, queue=f"behaviour.{name}", binding_keys=keys)(
                lambda event, name=name: got[name].append(event.conversation_id)
            )
        await bus.start()
        await bus.publish(_ended("c-1"))
        assert await harness.until(lambda: got["star"] == ["c-1"] and got["hash"] == ["c-1"])
        assert got["short"] == []
        assert await harness.depth("behaviour.short") == 0


async def test_unroutable_publish_fails_and_confirmed_ones_succeed(harness: Harness) -> None:
    async with harness.bus() as bus:
        with pytest.raises(UnroutableError) as caught:
            await bus.publish(_friendship())  # nothing is bound to it in this fresh broker
        assert caught.value.event_type == FRIENDSHIP.type
        bus.subscribe(ConversationEndedV1)(lambda event: None)
        await bus.start()
        ids = await bus.publish_many([_ended() for _ in range(20)])
        assert len(set(ids)) == 20


async def test_a_failing_handler_is_retried_with_attempt_headers(harness: Harness) -> None:
    attempts: list[tuple[int, dict[str, Any]]] = []

    async def flaky(event: ConversationEndedV1, context: EventContext) -> None:
        attempts.append((context.attempt, dict(context.headers)))
        if context.attempt < 3:
            raise ConnectionError("the database is away")

    async with harness.bus() as bus:
        bus.subscribe(ConversationEndedV1, retry=RetryPolicy(max_attempts=5, backoff=EXACT))(flaky)
        await bus.start()
        await bus.publish(_ended())
        assert await harness.until(lambda: len(attempts) == 1)
        await harness.advance(0.35)  # the first retry is due after 0.3 s
        assert await harness.until(lambda: len(attempts) == 2)
        await harness.advance(0.65)  # the second after 0.6 s
        assert await harness.until(lambda: len(attempts) == 3)
        assert [a for a, _ in attempts] == [1, 2, 3]
        second = attempts[1][1]
        assert second["eventbus-attempt"] == 2
        assert second["eventbus-retry-delay-ms"] == 300
        assert second["eventbus-error-type"] == "builtins.ConnectionError"
        assert second["eventbus-original-queue"] == "behaviour." + ENDED.type
        assert (second["eventbus-original-exchange"], second["eventbus-original-routing-key"]) == (
            ENDED.exchange, ENDED.routing_key)
        assert attempts[2][1]["eventbus-retry-delay-ms"] == 600
        assert "eventbus-attempt" not in attempts[0][1]
        assert await harness.depth("behaviour." + ENDED.type + ".dlq") == 0


async def test_a_delayed_publish_arrives_after_its_delay(harness: Harness) -> None:
    seen: list[EventContext] = []
    async with harness.bus() as bus:
        bus.subscribe(ConversationEndedV1)(lambda event, context: seen.append(context))
        await bus.start()
        await bus.publish(_ended(), delay=0.5)
        await harness.until(lambda: False, timeout=0.1)
        assert seen == []  # never early
        await harness.advance(0.5)
        assert await harness.until(lambda: len(seen) == 1)
        assert "eventbus-deliver-at" in seen[0].headers
        assert (seen[0].exchange, seen[0].routing_key) == (ENDED.exchange, ENDED.routing_key)


async def test_parking_keeps_the_body_and_adds_the_diagnosis(harness: Harness) -> None:
    async def refuse(event: ConversationEndedV1) -> None:
        raise ParkMessage("not for us")

    async def broken(event: ConversationEndedV1) -> None:
        raise ValueError("a bug")

    queue = "behaviour." + ENDED.type
    async with harness.bus() as bus:
        bus.subscribe(ConversationEndedV1, retry=RetryPolicy.never())(broken)
        bus.subscribe(ConversationEndedV1, queue="behaviour.refusing")(refuse)
        await bus.start()
        event_id = await bus.publish(_ended())
        (parked,) = await harness.take(queue + ".dlq", 1)
        (refused,) = await harness.take("behaviour.refusing.dlq", 1)
    assert parked.properties.message_id == event_id
    assert parked.body == ENDED.encode(ENDED.decode(parked.body))  # the event's bytes, untouched
    headers = parked.headers
    assert headers["eventbus-error-type"] == "builtins.ValueError"
    assert headers["eventbus-error"] == "ValueError: a bug"
    assert headers["eventbus-attempt"] == 1
    assert headers["eventbus-original-queue"] == queue
    assert (headers["eventbus-original-exchange"], headers["eventbus-original-routing-key"]) == (
        ENDED.exchange, ENDED.routing_key)
    assert headers["cloudEvents_id"] == event_id
    assert "eventbus-parked-at" in headers and "eventbus-park-reason" in headers
    assert refused.headers["eventbus-park-reason"] == "not for us"


async def test_an_undecodable_delivery_is_parked_at_once(harness: Harness) -> None:
    calls: list[object] = []
    queue = "behaviour." + ENDED.type
    async with harness.bus() as bus:
        bus.subscribe(ConversationEndedV1)(calls.append)
        await bus.start()
        garbage = Properties(content_type="application/json", message_id="bad-1", delivery_mode=2,
                             headers={"cloudEvents_type": ENDED.type})
        (outcome,) = await bus.transport.publish([(ENDED.exchange, ENDED.routing_key, garbage, b"{not json")])
        assert outcome is None
        (parked,) = await harness.take(queue + ".dlq", 1)
    assert calls == []
    assert parked.body == b"{not json"
    assert parked.headers["eventbus-attempt"] == 1
    assert parked.headers["eventbus-park-reason"]


async def test_handlers_run_side_by_side_up_to_the_prefetch(harness: Harness) -> None:
    running = 0
    most = 0
    done = 0
    gate = asyncio.Event()

    async def slow(event: ConversationEndedV1) -> None:
        nonlocal running, most, done
        running += 1
        most = max(most, running)
        await gate.wait()
        running -= 1
        done += 1

    async with harness.bus(prefetch=3) as bus:
        bus.subscribe(ConversationEndedV1)(slow)
        await bus.start()
        await bus.publish_many([_ended() for _ in range(7)])
        assert await harness.until(lambda: running == 3)
        await harness.until(lambda: running > 3, timeout=0.2)
        assert most == 3
        gate.set()
        assert await harness.until(lambda: done == 7)
        assert most == 3


async def test_stop_lets_the_running_handler_finish_and_leaves_the_rest_queued(harness: Harness) -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    finished: list[str] = []

    async def slow(event: ConversationEndedV1) -> None:
        started.set()
        await release.wait()
        finished.append(event.conversation_id)

    queue = "behaviour." + ENDED.type
    bus = harness.bus(prefetch=1)
    bus.subscribe(ConversationEndedV1)(slow)
    await bus.start()
    await bus.publish_many([_ended(f"c-{i}") for i in range(3)])
    await asyncio.wait_for(started.wait(), 10)
    stopping = asyncio.create_task(bus.stop(grace=10))
    await asyncio.sleep(0.05)
    assert not stopping.done()  # waiting for the handler
    release.set()
    await asyncio.wait_for(stopping, 10)
    await bus.close()
    assert finished == ["c-0"]  # finished and acked: not redelivered below
    rest = await harness.take(queue, 5, timeout=2)
    assert sorted(ENDED.decode(m.body).conversation_id for m in rest) == ["c-1", "c-2"]



async def test_a_quorum_queue_dead_letters_a_message_requeued_past_its_delivery_limit(harness: Harness) -> None:
    """The safety net under every consumer queue: a message no consumer can settle (nacked with
    requeue, or its consumer crashing) is dead-lettered after ``x-delivery-limit`` redeliveries."""
    queue, dlq = "behaviour.limited", "behaviour.limited.dlq"
    arguments = {"x-queue-type": "quorum", "x-delivery-limit": 2, "x-dead-letter-exchange": "",
                 "x-dead-letter-routing-key": dlq}
    topology = Topology("limited", queues=(QueueSpec(queue, arguments), QueueSpec(dlq, {"x-queue-type": "quorum"})))
    counts: list[object] = []
    async with harness.bus() as bus:
        transport = bus.transport

        def refuse(delivery: Any) -> None:
            counts.append((delivery.properties.headers or {}).get("x-delivery-count"))
            session.nack(delivery, requeue=True)

        session = await transport.consume([topology], {queue: refuse}, 1)
        try:
            (outcome,) = await transport.publish([("", queue, Properties(message_id="m-1", delivery_mode=2,
                                                                          headers={"k": "v"}), b"{}")])
            assert outcome is None
            assert await harness.until(lambda: len(counts) >= 3)
            (dead,) = await harness.take(dlq, 1)
            await harness.until(lambda: len(counts) > 3, timeout=0.3)
        finally:
            await session.close()
    assert counts == [None, 1, 2]  # the first delivery and two redeliveries, then no more
    assert dead.message_id == "m-1" and dead.body == b"{}" and dead.headers["k"] == "v"
    assert dead.headers["x-first-death-reason"] == "delivery_limit"
    assert dead.headers["x-death"][0]["queue"] == queue
    assert await harness.depth(queue) == 0


async def test_a_lost_connection_during_consume_redelivers_what_handlers_held(harness: Harness) -> None:
    """The consuming connection dies while handlers hold deliveries: their acks go nowhere, the
    broker redelivers, the bus reconnects and every event is handled; nothing is lost."""
    gate = asyncio.Event()
    holding: set[str] = set()
    completed: dict[str, bool] = {}

    async def handler(event: ConversationEndedV1, context: EventContext) -> None:
        holding.add(event.conversation_id)
        await gate.wait()
        completed[event.conversation_id] = completed.get(event.conversation_id, False) or context.redelivered

    names = [f"c-{i}" for i in range(4)]
    queue = "behaviour." + ENDED.type
    async with harness.bus(prefetch=4) as bus:
        bus.subscribe(ConversationEndedV1)(handler)
        await bus.start()
        await bus.publish_many([_ended(name) for name in names])
        assert await harness.until(lambda: len(holding) == 4)
        assert await harness.drop_connections() >= 1
        gate.set()
        assert await harness.until(lambda: all(completed.get(name) for name in names), timeout=30)
        assert bus.reconnects >= 1
        assert await harness.until(lambda: bus.reconnects >= 1 and not _unsettled(harness), timeout=10)
        assert await harness.depth(queue) == 0
    assert sorted(completed) == names and all(completed.values())  # each one handled again, redelivered


def _unsettled(harness: Harness) -> bool:
    broker = getattr(harness, "broker", None)
    return bool(broker is not None and broker.unacked())


async def test_a_named_lock_has_one_holder_and_is_freed_with_its_connection(harness: Harness) -> None:
    """The scheduler's leader lock (the seam's ``Locking``): an exclusive queue on RabbitMQ."""
    async with harness.bus() as bus:
        transport = bus.transport
        assert isinstance(transport, Locking)
        first = await transport.lock("behaviour.lock")
        assert first is not None and not first.lost.done()
        assert await transport.lock("behaviour.lock") is None  # held: nobody else gets it
        (outcome,) = await first.publish([("", "behaviour.nowhere", Properties(message_id="m-1"), b"{}")])
        assert isinstance(outcome, UnroutableError)  # the holder publishes, mandatory and confirmed
        assert await harness.drop_connections() >= 1
        assert await harness.until(lambda: first.lost.done())
        with pytest.raises(ConnectionError):
            await first.publish([("", "behaviour.nowhere", Properties(message_id="m-2"), b"{}")])
        second = await transport.lock("behaviour.lock")  # freed with the holder's connection
        assert second is not None
        await second.release()
        assert second.lost.done()
        third = await transport.lock("behaviour.lock")
        assert third is not None
        await third.release()


async def test_two_scheduler_replicas_run_each_tick_once(harness: Harness) -> None:
    runs: list[str] = []
    async with harness.bus() as bus:
        ledger = MemoryTickLedger()
        replicas = [Scheduler(bus.settings, ledger=ledger, lock_retry=0.2, transport=bus.transport) for _ in range(2)]
        for scheduler in replicas:
            scheduler.job("* * * * * *", name="every-second")(lambda tick: runs.append(tick.id))
        try:
            for scheduler in replicas:
                await scheduler.start()
            await harness.advance(3)
            assert await harness.until(lambda: len(runs) >= 3)
            firing = [s.stats.fired > 0 for s in replicas]  # before stopping: no failover yet
            assert [s.is_leader for s in replicas] == firing
        finally:
            await asyncio.gather(*(scheduler.stop() for scheduler in replicas))
    assert firing.count(True) == 1, "one replica fires the ticks"
    assert len(runs) == len(set(runs)), "a tick ran twice"
    assert sum(s.stats.ran for s in replicas) == len(runs)
