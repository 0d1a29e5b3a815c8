"""The whole service in process on the in-memory broker (``eventbus.testing``), in well under a
second: duplicates and reordering reach the domain core's state, every derived event is published
once through the outbox relay, and the periodic jobs run on the broker's clock (decay, and the
fallback re-driving a parked conversation). ``test_end_to_end.py`` and ``test_scheduled_jobs.py``
prove the same against RabbitMQ."""

from __future__ import annotations

import copy
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from context_handling.app import ContextHandlingService
from context_handling.cache import MemoryCandidateCache
from context_handling.processor import ConversationProcessor, Incoming
from context_handling.settings import ServiceSettings
from eventbus import BusSettings, EventBus
from eventbus.testing import MemoryBroker, PublishedEvents, in_memory, memory_bus
from eventbus.transports import Properties
from eventbus_contracts import FRIENDSHIP_STATUS_CHANGED_V1, CandidatesUpdatedV1, FriendshipStatusChangedV1

from ._conversations import T0, conversation, random_stream
from .test_end_to_end import applied, assert_state_is_the_domain_cores, outbox, pending


async def test_the_service_applies_each_conversation_once_and_publishes_what_it_derived(tmp_path: Path) -> None:
    broker = MemoryBroker()
    published = PublishedEvents(broker)
    published.expect(FriendshipStatusChangedV1, CandidatesUpdatedV1)  # consumed by other services
    with in_memory(broker):
        service = ContextHandlingService(
            ServiceSettings(bus=BusSettings("context-handling"), database_url=f"sqlite:///{tmp_path / 'c.db'}",
                            http=None, scheduler=False)
        )
    backend: EventBus = memory_bus(broker, "chat-backend")
    stream = random_stream(120, 18, seed=5, prefix="m")
    items = [(f"m-{event.conversation_id}", event) for event in stream]
    rng = random.Random(3)
    scrambled = items[::-1] + rng.sample(items, 30)  # reversed, and 30 sent twice
    rng.shuffle(scrambled)
    await service.start()
    try:
        for event_id, event in scrambled:
            await backend.publish(event, event_id=event_id)
        await broker.settle()
        assert applied(service.storage, [i for i, _ in items]) == len(items)
        await service.relay.drain(timeout=10)
        assert pending(service.storage) == 0
        assert_state_is_the_domain_cores(service.storage, stream, "m")
        rows = outbox(service.storage, "m")
        kinds = Counter(t for _, t in rows)
        assert kinds["context.candidates.updated.v1"] == sum(len(e.participants) for e in stream)
        assert published.count(CandidatesUpdatedV1) == kinds["context.candidates.updated.v1"]
        assert published.count(FriendshipStatusChangedV1) == kinds["context.friendship.status_changed.v1"] > 0
        assert sorted(m.message_id for m in published.messages if m.event_type.startswith("context.")) == sorted(
            i for i, _ in rows
        )
    finally:
        await service.stop(grace=5)
        await backend.close()


async def _parked_conversation(event_id: str) -> tuple[str, tuple[Properties, bytes]]:
    """A conversation as the service's queue would have received it, parked after a transient
    failure (the headers the SDK's parking writes): what the fallback job re-drives."""
    scratch = MemoryBroker()
    backend = memory_bus(scratch, "chat-backend")
    event = conversation(99, ["p-c", "p-d"], T0, minutes=60, messages={"p-c": 20, "p-d": 20})
    scratch.tap("chat", "#")
    await backend.publish(event, event_id=event_id)
    await backend.close()
    stored = scratch.published[-1]
    queue = "context-handling.chat.conversation.ended.v1"
    properties = copy.copy(stored.properties)
    properties.headers = {**stored.headers, "eventbus-error-type": "builtins.ConnectionError",
                          "eventbus-error": "ConnectionError: the database is down", "eventbus-attempt": 1,
                          "eventbus-original-queue": queue}
    return queue, (properties, stored.body)


async def test_the_periodic_jobs_run_on_the_memory_clock(tmp_path: Path) -> None:
    # a year after a friend pair last talked, an hour before midnight
    broker = MemoryBroker(start=datetime(2027, 11, 5, 23, 0, tzinfo=UTC))
    published = PublishedEvents(broker)
    published.expect(FriendshipStatusChangedV1, CandidatesUpdatedV1)  # consumed by other services
    with in_memory(broker):
        service = ContextHandlingService(
            ServiceSettings(bus=BusSettings("context-handling"), database_url=f"sqlite:///{tmp_path / 'c.db'}",
                            http=None, decay_cron="0 0 * * *", fallback_cron="0 */6 * * *")
        )
        service.storage.migrate()
        ConversationProcessor(service.storage, MemoryCandidateCache(60)).process(
            [Incoming(f"e{n}", conversation(n, ["u-a", "u-b"], T0 + timedelta(minutes=n), minutes=90,
                                            messages={"u-a": 30, "u-b": 30})) for n in range(3)]
        )
        queue, (properties, body) = await _parked_conversation("m-parked")
        await service.start()
        try:
            await broker.settle()  # the leader fired the latest decay tick (no misfire limit) at once
            broker.publish("", f"{queue}.dlq", properties, body)
            await broker.clock.advance(3600)  # midnight: decay again, and the fallback (6-hourly)
            await service.relay.drain(timeout=10)
            scheduler = service.scheduler
            assert scheduler.is_leader and scheduler.stats.failed == 0
            assert (scheduler.stats.fired, scheduler.stats.ran) == (3, 3)
            assert broker.depth(f"{queue}.dlq") == 0  # re-driven by the fallback ...
            assert applied(service.storage, ["m-parked"]) == 1  # ... and applied
        finally:
            await service.stop(grace=5)
    t = service.storage.outbox.table
    with service.storage.engine.connect() as connection:
        rows = connection.execute(sa.select(t.c.data).where(t.c.subject == "u-a/u-b")).scalars()
        changes = [FRIENDSHIP_STATUS_CHANGED_V1.decode(data) for data in rows]
    decays = [c for c in changes if c.cause.value == "decay"]
    assert len(decays) == 1, "the first decay tick lowered the pair; the second had nothing to do"
    assert decays[0].previous_status.value == "friend"
    assert published.one(FriendshipStatusChangedV1, cause="decay").user_a == "u-a"
