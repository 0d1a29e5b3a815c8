"""What only the in-memory broker of ``eventbus.testing`` offers, and what a service tests with it:
the fixtures of the pytest plugin, the clock, the quorum delivery limit, lost connections, and a
service's exactly-once logic (inbox + outbox + relay) in milliseconds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from eventbus import (
    EventBus,
    EventContext,
    ExponentialBackoff,
    Inbox,
    Outbox,
    OutboxRelay,
    RetryPolicy,
    TopologyMismatchError,
    create_sql_engine,
)
from eventbus.testing import MemoryBroker, MemoryClock, PublishedEvents, memory_bus
from eventbus.transports import Properties, Topology
from eventbus_contracts import REGISTRY, ConversationEndedV1, FriendshipStatusChangedV1

ENDED = REGISTRY.get("chat.conversation.ended.v1")
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _ended(conversation_id: str = "c-1") -> ConversationEndedV1:
    return ENDED.validate_python({**ENDED.schema["examples"][0], "conversation_id": conversation_id})


def _friendship(conversation_id: str) -> FriendshipStatusChangedV1:
    return FriendshipStatusChangedV1(user_a="u_a", user_b="u_b", previous_status="acquaintance", status="friend",
                                     score=41.5, changed_at=T0, cause="conversation", conversation_id=conversation_id)


async def test_fixtures_publish_and_assert_on_events(memory_bus: EventBus, published: PublishedEvents) -> None:
    seen: list[str] = []
    memory_bus.subscribe(ConversationEndedV1)(lambda event: seen.append(event.conversation_id))
    memory_bus.subscribe(FriendshipStatusChangedV1)(lambda event: None)
    await memory_bus.start()
    await memory_bus.publish(_ended("c-7"))
    await memory_bus.publish(_friendship("c-7"))
    assert published.one(FriendshipStatusChangedV1, status="friend").conversation_id == "c-7"
    assert published.count(ConversationEndedV1) == 1
    with pytest.raises(AssertionError, match="expected exactly one FriendshipStatusChangedV1"):
        published.one(FriendshipStatusChangedV1, status="stranger")


async def test_retries_run_out_on_the_clock_and_park(memory_bus: EventBus, memory_broker: MemoryBroker,
                                                      clock: MemoryClock) -> None:
    attempts: list[int] = []

    def fails(event: ConversationEndedV1, context: EventContext) -> None:
        attempts.append(context.attempt)
        raise RuntimeError("still down")

    backoff = ExponentialBackoff(first=10, factor=3, maximum=3600, jitter=0)
    memory_bus.subscribe(ConversationEndedV1, retry=RetryPolicy(max_attempts=4, backoff=backoff))(fails)
    await memory_bus.start()
    await memory_bus.publish(_ended())
    await memory_broker.settle()
    await clock.advance(9.9)
    assert attempts == [1]
    await clock.advance(0.1 + 30 + 90)  # 10 s, 30 s and 90 s later: attempts 2, 3 and 4
    assert attempts == [1, 2, 3, 4]
    (parked,) = memory_broker.messages(f"test.{ENDED.type}.dlq")
    assert parked.headers["eventbus-attempt"] == 4
    assert parked.headers["eventbus-error"] == "RuntimeError: still down"
    assert clock.now == pytest.approx(130.0)


async def test_quorum_delivery_limit_dead_letters_a_message_nobody_can_ack() -> None:
    broker = MemoryBroker()
    transport = broker.transport()
    queue, dlq = "svc.q", "svc.q.dlq"
    limit = {"x-queue-type": "quorum", "x-delivery-limit": 2, "x-dead-letter-exchange": "",
             "x-dead-letter-routing-key": dlq}
    from eventbus._topology import QueueSpec  # the spec the bus itself declares

    topology = Topology("q", queues=(QueueSpec(queue, limit), QueueSpec(dlq, {"x-queue-type": "quorum"})))
    counts: list[object] = []

    def crash(delivery: object) -> None:
        counts.append(delivery.properties.headers.get("x-delivery-count") if delivery.properties.headers else None)
        session.nack(delivery, requeue=True)

    session = await transport.consume([topology], {queue: crash}, prefetch=1)
    await transport.publish([("", queue, Properties(message_id="m-1", headers={}), b"{}")])
    await broker.settle()
    assert counts == [None, 1, 2]  # delivered three times: the first and two redeliveries
    (dead,) = broker.messages(dlq)
    assert dead.headers["x-first-death-reason"] == "delivery_limit"
    assert dead.headers["x-death"][0]["queue"] == queue


async def test_a_lost_connection_redelivers_and_the_bus_reconnects() -> None:
    broker = MemoryBroker()
    seen: list[bool] = []
    bus = memory_bus(broker)

    async def handler(event: ConversationEndedV1, context: EventContext) -> None:
        seen.append(context.redelivered)
        if len(seen) == 1:
            broker.drop_connections()  # the connection dies under the running handler

    bus.subscribe(ConversationEndedV1)(handler)
    await bus.start()
    await bus.publish(_ended())
    await broker.settle()
    assert seen == [False, True]
    assert bus.reconnects == 1
    await bus.close(grace=0)


async def test_a_queue_declared_otherwise_is_a_mismatch() -> None:
    broker = MemoryBroker()
    first = memory_bus(broker)
    first.subscribe(ConversationEndedV1)(lambda event: None)
    await first.start()
    other = memory_bus(broker, queue_type="classic")
    other.subscribe(ConversationEndedV1)(lambda event: None)
    with pytest.raises(TopologyMismatchError, match="x-queue-type"):
        await other.start()
    await first.close()


async def test_inbox_outbox_and_relay_give_exactly_once_in_milliseconds(tmp_path: Path) -> None:
    """A service's exactly-once logic: claim the event id, write the derived event to the outbox in
    the same transaction, let the relay publish; a redelivered duplicate changes nothing."""
    broker = MemoryBroker()
    published = PublishedEvents(broker)
    engine = create_sql_engine(f"sqlite:///{tmp_path / 'service.db'}")
    inbox, outbox = Inbox("friendship"), Outbox(REGISTRY)
    inbox.create_schema(engine)
    outbox.create_schema(engine)
    published.expect(FriendshipStatusChangedV1)  # consumed by another service
    bus = memory_bus(broker, "friendship")
    relay = OutboxRelay(engine, outbox, bus, poll_interval=0.01)

    def on_ended(event: ConversationEndedV1, context: EventContext) -> None:
        with engine.begin() as connection:
            if not inbox.claim(connection, context.id):
                return  # seen before: a redelivery or a re-publish
            derived = _friendship(event.conversation_id)
            outbox.add(connection, derived, event_id=f"friendship:{context.id}")

    bus.subscribe(ConversationEndedV1)(on_ended)
    await bus.start()
    event_id = str(uuid.uuid4())
    await bus.publish(_ended("c-9"), event_id=event_id)
    await bus.publish(_ended("c-9"), event_id=event_id)  # the same event again (at-least-once upstream)
    await broker.settle()
    assert await relay.drain(timeout=5) == 0
    assert published.one(FriendshipStatusChangedV1, status="friend", conversation_id="c-9")
    (message,) = [m for m in published.messages if m.event_type == "context.friendship.status_changed.v1"]
    assert message.message_id == f"friendship:{event_id}"
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(outbox.table)).scalar() == 1
    await bus.close()
    engine.dispose()


async def test_a_single_active_consumer_queue_delivers_to_one_consumer_until_it_goes() -> None:
    broker = MemoryBroker()
    transport = broker.transport()
    from eventbus._topology import QueueSpec

    topology = Topology("sac", queues=(QueueSpec("svc.sac", {"x-queue-type": "quorum",
                                                               "x-single-active-consumer": True}),))
    got: dict[str, list[str]] = {"first": [], "second": []}
    sessions = {}
    for name in ("first", "second"):
        def take(delivery: object, name: str = name) -> None:
            got[name].append(delivery.properties.message_id)
            sessions[name].ack(delivery)

        sessions[name] = await transport.consume([topology], {"svc.sac": take}, prefetch=10)
    await transport.publish([("", "svc.sac", Properties(message_id=f"m-{i}"), b"{}") for i in range(3)])
    await broker.settle()
    assert got == {"first": ["m-0", "m-1", "m-2"], "second": []}
    await sessions["first"].close()
    await transport.publish([("", "svc.sac", Properties(message_id="m-3"), b"{}")])
    await broker.settle()
    assert got["second"] == ["m-3"]
