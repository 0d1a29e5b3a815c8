"""Every contract's examples survive a trip through the real broker, in both APIs and across them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from eventbus import BusSettings, EventBus, EventContract, EventValidationError, SyncEventBus, UnroutableError
from eventbus_contracts import REGISTRY

from ._collect import AsyncCollector, SyncCollector

pytestmark = pytest.mark.broker

EXAMPLES = [(c, i, example) for c in REGISTRY for i, example in enumerate(c.schema["examples"])]
MODELS = [c.model for c in REGISTRY]


def _examples() -> list[Any]:
    return [contract.validate_python(example) for contract, _, example in EXAMPLES]


def _assert_matches(sent: list[Any], ids: list[str], received: list[tuple[Any, Any]], settings: BusSettings) -> None:
    by_id = {ctx.id: (event, ctx) for event, ctx in received}
    assert sorted(by_id) == sorted(ids)
    for event, event_id in zip(sent, ids, strict=True):
        got, ctx = by_id[event_id]
        assert type(got) is type(event)
        assert got == event
        assert orjson.loads(got.model_dump_json(exclude_unset=True)) == orjson.loads(
            event.model_dump_json(exclude_unset=True)
        )
        assert ctx.type == REGISTRY.get(ctx.type).type == type(event).__eventbus_contract__.type
        assert ctx.source == settings.source
        assert ctx.subject == "s"
        assert ctx.attempt == 1
        assert ctx.redelivered is False
        assert ctx.queue == f"{settings.service}.{ctx.type}"
        assert ctx.time is not None and abs((datetime.now(UTC) - ctx.time).total_seconds()) < 60


async def test_async_publish_async_consume(settings: BusSettings, raw: Any) -> None:
    bus = EventBus(settings)
    collector = AsyncCollector(bus, *MODELS)
    await bus.start()
    try:
        events = _examples()
        ids = [await bus.publish(e, subject="s") for e in events]
        received = await collector.wait_for(len(events))
    finally:
        await bus.close()
    _assert_matches(events, ids, received, settings)


def test_sync_publish_sync_consume(settings: BusSettings, raw: Any) -> None:
    with SyncEventBus(settings) as bus:
        collector = SyncCollector(bus, *MODELS)
        bus.start()
        events = _examples()
        ids = [bus.publish(e, subject="s") for e in events]
        received = collector.wait_for(len(events))
    _assert_matches(events, ids, received, settings)


async def test_sync_publish_async_consume(settings: BusSettings, raw: Any) -> None:
    bus = EventBus(settings)
    collector = AsyncCollector(bus, *MODELS)
    await bus.start()
    events = _examples()
    try:
        with SyncEventBus(settings) as publisher:
            ids = await asyncio.to_thread(lambda: [publisher.publish(e, subject="s") for e in events])
        received = await collector.wait_for(len(events))
    finally:
        await bus.close()
    _assert_matches(events, ids, received, settings)


async def test_async_publish_sync_consume(settings: BusSettings, raw: Any) -> None:
    events = _examples()
    with SyncEventBus(settings) as consumer:
        collector = SyncCollector(consumer, *MODELS)
        consumer.start()  # declares and binds the queues before anything is published
        async with EventBus(settings) as publisher:
            ids = [await publisher.publish(e, subject="s") for e in events]
        received = collector.wait_for(len(events))
    _assert_matches(events, ids, received, settings)


async def test_publish_many_confirms_every_event(settings: BusSettings, raw: Any) -> None:
    conversation = REGISTRY.get("chat.conversation.ended.v1")
    base = conversation.schema["examples"][0]
    events = [conversation.validate_python({**base, "conversation_id": f"conv_{n}"}) for n in range(300)]
    bus = EventBus(settings.with_(publish_window=64))
    collector = AsyncCollector(bus, conversation.model)
    await bus.start()
    try:
        ids = await bus.publish_many(events)
        received = await collector.wait_for(300, timeout=30)
    finally:
        await bus.close()
    assert len(set(ids)) == 300
    assert sorted(ctx.id for _, ctx in received) == sorted(ids)
    assert sorted(e.conversation_id for e, _ in received) == sorted(e.conversation_id for e in events)


def _private_contract(settings: BusSettings) -> EventContract[Any]:
    """A contract on an exchange of this test's own, so no other queue can be bound to it."""

    class Thing(BaseModel):
        name: str

    return EventContract(
        type="test.thing.happened.v1",
        exchange=f"test-unroutable-{settings.service}",
        model=Thing,
        schema={"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
    )


async def test_unroutable_publish_raises_in_async_api(settings: BusSettings) -> None:
    contract = _private_contract(settings)
    async with EventBus(settings) as bus:
        with pytest.raises(UnroutableError) as caught:
            await bus.publish(contract.model(name="x"), event_id="evt-unroutable-1")
    assert caught.value.event_id == "evt-unroutable-1"
    assert caught.value.event_type == "test.thing.happened.v1"
    assert "no queue is bound" in str(caught.value)


def test_unroutable_publish_raises_in_sync_api(settings: BusSettings) -> None:
    contract = _private_contract(settings)
    with SyncEventBus(settings) as bus, pytest.raises(UnroutableError) as caught:
        bus.publish(contract.model(name="x"), event_id="evt-unroutable-2")
    assert caught.value.event_id == "evt-unroutable-2"


async def test_invalid_event_is_refused_before_sending(settings: BusSettings) -> None:
    contract = _private_contract(settings)
    async with EventBus(settings) as bus:
        with pytest.raises(EventValidationError) as caught:
            await bus.publish(contract.model.model_construct(name=5))
    assert caught.value.violations[0].instance_path == "/name"
