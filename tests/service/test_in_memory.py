"""The whole service in process on the in-memory broker (``eventbus.testing``), in well under a
second: duplicates and reordering reach the domain core's state, every derived event is published
once through the outbox relay. ``test_end_to_end.py`` proves the same against RabbitMQ."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from context_handling.app import ContextHandlingService
from context_handling.settings import ServiceSettings
from eventbus import BusSettings, EventBus
from eventbus.testing import MemoryBroker, PublishedEvents, in_memory, memory_bus
from eventbus_contracts import CandidatesUpdatedV1, FriendshipStatusChangedV1

from ._conversations import random_stream
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
