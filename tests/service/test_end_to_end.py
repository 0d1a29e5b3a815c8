"""The service as deployed: a real process on RabbitMQ, PostgreSQL and Redis.

"Exactly once" here means: every conversation changes the pairs once, however often it is
delivered; every derived event is written to the outbox once per change, and reaches the broker
at least once with that row's deterministic id, so a consumer that drops ids it has seen (as the
tap below does when it counts) applies each change exactly once.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest
import sqlalchemy as sa

from context_handling.storage import Storage
from eventbus import consumer_queue_name, create_sql_engine
from eventbus_contracts import ConversationEndedV1

from .._databases import REDIS_URL
from ..conftest import RawBroker
from ..sdk.test_scheduler import eventually
from ._conversations import random_stream, reference_states
from ._harness import DerivedTap, ServiceProcess, publish_to_queue

pytestmark = [pytest.mark.broker, pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def storage(postgres_url: str, service: str) -> Iterator[Storage]:
    engine = create_sql_engine(postgres_url)
    yield Storage(engine, service=service)
    engine.dispose()


@pytest.fixture
def process(
    tmp_path: Path, service: str, broker_url: str, postgres_url: str, redis_prefix: str, raw: RawBroker
) -> Iterator[ServiceProcess]:
    env = {
        "EVENTBUS_URL": broker_url,
        "CONTEXT_SERVICE": service,
        "DATABASE_URL": postgres_url,
        "REDIS_URL": REDIS_URL,
        "CONTEXT_CACHE_PREFIX": redis_prefix,
        "CONTEXT_SCHEDULER": "off",
        "CONTEXT_DECAY_SHARDS": "1",  # no decay chord: no workflow engine on the shared broker's engine queue
        "CONTEXT_HTTP": "127.0.0.1:0",
        "EVENTBUS_PREFETCH": "200",
        # a killed relay's claimed rows wait out this lease before another relay sends them
        "CONTEXT_OUTBOX_LEASE": "3",
    }
    running = ServiceProcess(env, tmp_path / "service.log")
    yield running
    running.ensure_stopped()


@pytest.fixture
async def tap(broker_url: str, service: str) -> DerivedTap:
    tap = DerivedTap(broker_url, f"/services/{service}")
    await tap.start()
    yield tap  # type: ignore[misc]
    await tap.close()


def applied(storage: Storage, ids: list[str]) -> int:
    inbox = storage.inbox.table
    with storage.engine.connect() as connection:
        query = sa.select(sa.func.count()).where(inbox.c.consumer == storage.inbox.consumer, inbox.c.event_id.in_(ids))
        return int(connection.execute(query).scalar_one())


def outbox(storage: Storage, prefix: str) -> list[tuple[str, str]]:
    """Our derived events (subject: a user id or "user_a/user_b"; other publishers may share the broker)."""
    t = storage.outbox.table
    query = sa.select(t.c.event_id, t.c.event_type).where(t.c.subject.startswith(prefix)).order_by(t.c.seq)
    with storage.engine.connect() as connection:
        return [(i, ty) for i, ty in connection.execute(query)]


def pending(storage: Storage) -> int:
    with storage.engine.connect() as connection:
        return storage.outbox.pending_count(connection)


def assert_state_is_the_domain_cores(storage: Storage, stream: list[ConversationEndedV1], prefix: str) -> None:
    expected = reference_states(stream)
    with storage.engine.connect() as connection:
        stored = {(p.user_a, p.user_b): p for p in storage.all_pairs(connection) if p.user_a.startswith(prefix)}
    assert set(stored) == set(expected)
    for key, state in expected.items():
        row = stored[key]
        assert row.strength == pytest.approx(state.strength, rel=1e-9, abs=1e-12), key
        assert (row.t_ref, row.status) == (state.t_ref, state.status), key
    assert any(s.status.is_friend for s in expected.values())


async def settle(storage: Storage, tap: DerivedTap, ids: list[str], prefix: str, timeout: float = 90.0) -> None:
    """Wait until every id is applied, the outbox is empty and the tap has each row once or more."""
    await eventually(lambda: applied(storage, ids) == len(ids), timeout)
    await eventually(lambda: pending(storage) == 0, timeout)
    await eventually(
        lambda: len({d.id for d in tap.received if d.subject.startswith(prefix)}) >= len(outbox(storage, prefix)),
        timeout,
    )


async def test_duplicates_reordering_and_a_second_delivery_give_the_domain_cores_state(
    process: ServiceProcess, storage: Storage, tap: DerivedTap, service: str, broker_url: str
) -> None:
    prefix = f"e{uuid.uuid4().hex[:6]}"
    stream = random_stream(500, 42, seed=11, prefix=prefix)
    items = [(f"{prefix}-{event.conversation_id}", event) for event in stream]
    rng = random.Random(4)
    scrambled = items[::-1] + rng.sample(items, 50)  # reversed, and 50 sent twice
    rng.shuffle(scrambled)
    ids = [event_id for event_id, _ in items]
    queue = consumer_queue_name(service, "chat.conversation.ended.v1")

    process.start()
    await process.wait_ready()
    assert process.get("/healthz")[0] == 200 and process.get("/readyz") == (200, "ready\n")
    await publish_to_queue(broker_url, queue, scrambled, source="/test/chat-backend")
    await settle(storage, tap, ids, prefix)
    assert_state_is_the_domain_cores(storage, stream, prefix)
    rows = outbox(storage, prefix)
    assert len(rows) == len({i for i, _ in rows})
    assert Counter(t for _, t in rows)["context.candidates.updated.v1"] == sum(len(e.participants) for e in stream)
    assert {d.id for d in tap.received if d.subject.startswith(prefix)} == {i for i, _ in rows}

    # The whole stream again, in order, then one new conversation: once that one is applied, every
    # copy before it in the queue has been handled too (one consumer, batches commit in order).
    await publish_to_queue(broker_url, queue, items, source="/test/chat-backend")
    sentinel = random_stream(1, 2, seed=99, prefix=prefix)[0].model_copy(update={"conversation_id": "sentinel"})
    await publish_to_queue(broker_url, queue, [(f"{prefix}-sentinel", sentinel)], source="/test/chat-backend")
    await eventually(lambda: applied(storage, [f"{prefix}-sentinel"]) == 1, 60)
    metrics = process.metrics()
    # (">=": the queue is bound to the shared chat exchange, where other tests publish too)
    assert metrics['context_events_consumed_total{outcome="duplicate"}'] >= 50 + len(items)
    assert metrics['context_events_consumed_total{outcome="applied"}'] >= len(items) + 1
    assert_state_is_the_domain_cores(storage, [*stream, sentinel], prefix)
    assert outbox(storage, prefix)[: len(rows)] == rows  # nothing new for the repeated stream
    assert process.terminate() == 0, process.log


async def test_sigkill_mid_stream_then_restart_loses_and_repeats_nothing(
    process: ServiceProcess, storage: Storage, tap: DerivedTap, service: str, broker_url: str
) -> None:
    prefix = f"k{uuid.uuid4().hex[:6]}"
    stream = random_stream(2500, 120, seed=12, prefix=prefix)
    items = [(f"{prefix}-{event.conversation_id}", event) for event in stream]
    ids = [event_id for event_id, _ in items]
    queue = consumer_queue_name(service, "chat.conversation.ended.v1")

    process.start()
    await process.wait_ready()
    started = time.monotonic()
    # Publish while the service consumes, so that the kill lands mid-stream however fast either side is.
    # (The count is read in a thread: a blocking query every 50 ms on this loop would starve the publisher.)
    publishing = asyncio.ensure_future(publish_to_queue(broker_url, queue, items, source="/test/chat-backend"))
    deadline = time.monotonic() + 120
    while await asyncio.to_thread(applied, storage, ids) < 600:
        assert time.monotonic() < deadline, "the service applied fewer than 600 conversations in 120 s"
        await asyncio.sleep(0.1)
    process.kill()  # SIGKILL: no shutdown, unacked deliveries and unpublished outbox rows left behind
    at_kill = applied(storage, ids)
    await publishing  # the rest waits in the queue for the restarted service
    assert at_kill < len(ids), "the kill should land mid-stream"

    process.start()
    await process.wait_ready()
    await settle(storage, tap, ids, prefix)
    elapsed = time.monotonic() - started
    assert process.terminate() == 0, process.log
    assert_state_is_the_domain_cores(storage, stream, prefix)
    rows = outbox(storage, prefix)
    row_ids = [i for i, _ in rows]
    assert len(row_ids) == len(set(row_ids)), "one outbox row per change"
    assert Counter(t for _, t in rows)["context.candidates.updated.v1"] == sum(len(e.participants) for e in stream)
    seen = Counter(d.id for d in tap.received if d.subject.startswith(prefix))
    assert set(seen) == set(row_ids), "every derived event reached the broker, and nothing else did"
    # Copies published again after the kill carry the same id: a consumer keeping the first applies each once.
    first = {}
    for derived in tap.received:
        if derived.subject.startswith(prefix):
            first.setdefault(derived.id, derived)
    chains: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for event_id, event_type in rows:
        if event_type == "context.friendship.status_changed.v1":
            data = first[event_id].data
            chains.setdefault((data["user_a"], data["user_b"]), []).append((data["previous_status"], data["status"]))
    with storage.engine.connect() as connection:
        final = {(p.user_a, p.user_b): p.status.value for p in storage.all_pairs(connection)}
    for pair, chain in chains.items():
        assert chain[0][0] == "stranger", pair
        assert all(chain[n][1] == chain[n + 1][0] for n in range(len(chain) - 1)), (pair, chain)
        assert chain[-1][1] == final[pair], pair
    # In arrival order, each pair's and each user's versions never go down, and the last one received
    # is the stored state (issue 11: a relay's crash used to let newer events overtake older ones).
    arrived: dict[str, list[tuple[int, str]]] = {}
    for derived in tap.received:
        if derived.subject.startswith(prefix):
            status = derived.data.get("status", "")  # candidates.updated has none
            arrived.setdefault(derived.subject, []).append((derived.data["version"], status))
    assert all(a[0] <= b[0] for got in arrived.values() for a, b in pairwise(got))
    for pair in chains:
        assert arrived[f"{pair[0]}/{pair[1]}"][-1][1] == final[pair], pair
    print(  # the numbers for the report
        f"\nkilled at {at_kill}/{len(ids)} applied; {elapsed:.1f} s to settle; {len(row_ids)} derived events, "
        f"{sum(seen.values()) - len(seen)} re-published copies after the restart, dropped by id"
    )
