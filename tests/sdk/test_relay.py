"""The outbox relay on the real broker: confirmed publishes with the stored ids, re-publish after a
crash between confirm and mark (same ids, so consumers drop the copies), unroutable rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from eventbus import BusSettings, EventBus, EventContract, Outbox, OutboxEntry, OutboxRelay, create_sql_engine
from eventbus_contracts import REGISTRY, FriendshipStatusChangedV1

from .._taps import take_matching
from ..conftest import RawBroker

pytestmark = pytest.mark.broker
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def change(user: str) -> FriendshipStatusChangedV1:
    return FriendshipStatusChangedV1(
        user_a=f"{user}_a",
        user_b=f"{user}_b",
        previous_status="acquaintance",
        status="friend",
        score=41.5,
        changed_at=T0,
        cause="conversation",
        conversation_id="conv_1",
    )


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = create_sql_engine(f"sqlite:///{tmp_path / 'outbox.db'}")
    yield engine
    engine.dispose()


def _write(engine: sa.Engine, outbox: Outbox, entries: list[OutboxEntry]) -> None:
    outbox.create_schema(engine)
    with engine.begin() as connection:
        outbox.add_many(connection, entries)


def _outcomes(engine: sa.Engine, outbox: Outbox) -> list[tuple[str, str | None]]:
    with engine.connect() as connection:
        query = sa.select(outbox.table.c.event_id, outbox.table.c.outcome).order_by(outbox.table.c.seq)
        return [(a, b) for a, b in connection.execute(query)]


async def test_relay_publishes_with_stored_ids_and_marks_rows_sent(
    settings: BusSettings, engine: sa.Engine, raw: RawBroker
) -> None:
    tag = uuid.uuid4().hex[:8]
    tap = raw.declare_tap("context", "context.friendship.status_changed.v1")
    outbox = Outbox(REGISTRY)
    entries = [OutboxEntry(change(f"u{tag}{n}"), event_id=f"{tag}-{n}", subject=f"pair-{n}", time=T0) for n in range(5)]
    _write(engine, outbox, entries)
    async with EventBus(settings) as bus:
        relay = OutboxRelay(engine, outbox, bus)
        assert await relay.drain(timeout=20) == 0
    ours = take_matching(raw, tap, lambda m: m.properties.message_id.startswith(tag), 5)
    assert sorted(m.properties.message_id for m in ours) == [f"{tag}-{n}" for n in range(5)]
    first = next(m for m in ours if m.properties.message_id == f"{tag}-0")
    assert first.headers["cloudEvents_subject"] == "pair-0"
    assert first.headers["cloudEvents_time"] == "2026-11-25T12:00:00Z"
    assert first.headers["cloudEvents_source"] == settings.source
    assert _outcomes(engine, outbox) == [(f"{tag}-{n}", "published") for n in range(5)]
    assert relay.stats.published == 5


async def test_rows_published_but_not_marked_are_published_again_with_the_same_ids(
    settings: BusSettings, engine: sa.Engine, raw: RawBroker
) -> None:
    tag = uuid.uuid4().hex[:8]
    tap = raw.declare_tap("context", "context.friendship.status_changed.v1")
    outbox = Outbox(REGISTRY)
    _write(engine, outbox, [OutboxEntry(change(f"u{tag}{n}"), event_id=f"{tag}-{n}") for n in range(3)])
    async with EventBus(settings) as bus:
        # A relay that claimed the rows, got the broker's confirms and died before marking them:
        with engine.begin() as connection:
            claimed = outbox.claim(connection, limit=10, lease=timedelta(milliseconds=1))
        for message in claimed:
            await bus.publish(outbox.decode(message), event_id=message.event_id, time=message.time)
        # Its lease lapses; the next relay publishes them again.
        relay = OutboxRelay(engine, outbox, bus)
        assert await relay.drain(timeout=20) == 0
    ids = [
        m.properties.message_id for m in take_matching(raw, tap, lambda m: m.properties.message_id.startswith(tag), 6)
    ]
    assert len(ids) == 6, "each row reached the broker twice"
    assert sorted(set(ids)) == [f"{tag}-{n}" for n in range(3)], "…with the same event id, so a consumer keeps one"


class Probe(BaseModel):
    note: str


async def test_rows_nobody_is_bound_to_are_marked_unroutable_not_retried(
    settings: BusSettings, engine: sa.Engine, raw: RawBroker
) -> None:
    exchange = f"test-unbound-{uuid.uuid4().hex[:8]}"
    contract = EventContract(
        type="test.probe.v1",
        exchange=exchange,
        model=Probe,
        schema={"type": "object", "required": ["note"], "properties": {"note": {"type": "string"}}},
    )
    outbox = Outbox([contract])
    _write(engine, outbox, [OutboxEntry(Probe(note="hello"), event_id="probe-1")])
    try:
        async with EventBus(settings) as bus:
            relay = OutboxRelay(engine, outbox, bus)
            assert await relay.drain(timeout=20) == 0
        assert _outcomes(engine, outbox) == [("probe-1", "unroutable")]
        assert relay.stats.unroutable == 1 and relay.stats.failed == 0
    finally:
        raw.channel.exchange_delete(exchange)
