"""The decay recompute in shards: every pair in exactly one shard, and the shards of one midnight add
up to the whole recompute on the same data (SQLite and PostgreSQL; no broker involved)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from context_handling.cache import MemoryCandidateCache
from context_handling.decay import DecayReport, lower_decayed, report_from_counts, shard_of
from context_handling.jobs import decay_recompute
from context_handling.processor import ConversationProcessor, Incoming
from context_handling.scoring import Status
from context_handling.storage import Storage
from eventbus import create_sql_engine

from .._databases import private_schema
from ._conversations import T0, random_stream

MIDNIGHT = T0 + timedelta(days=75)  # the stream spans 40 days: most friendships have decayed by then
SHARDS = 4
CHUNK = 7  # small, so that every shard walks many chunks and the chunk edges fall everywhere


def test_shard_of_is_a_stable_hash_of_the_pair_key() -> None:
    # pinned: replicas of two versions in one rolling deploy must agree on every pair's shard
    assert shard_of(("alice", "bob"), 16) == 15
    assert shard_of(("x_001", "x_002"), 1000) == 927
    assert all(shard_of((f"p{i}", f"q{i}"), 1) == 0 for i in range(100))
    counts = [0] * SHARDS
    for i in range(4000):
        counts[shard_of((f"p{i}", f"q{i}"), SHARDS)] += 1
    assert min(counts) > 800, counts  # about a quarter each: shards of similar size
    with pytest.raises(ValueError):
        shard_of(("a", "b"), 0)


def test_reports_add_up_per_status_and_only_for_one_midnight() -> None:
    m = datetime(2026, 12, 1, tzinfo=UTC)
    a = report_from_counts(m, 5, {"acquaintance": 2, "stranger": 1})
    b = report_from_counts(m, 3, {"stranger": 2})
    total = DecayReport.total(m, [a, b])
    assert total.examined == 8
    assert total.lowered == {Status.stranger: 3, Status.acquaintance: 2, Status.friend: 0, Status.close_friend: 0}
    assert DecayReport.total(m, []).examined == 0
    with pytest.raises(ValueError):
        _ = a + report_from_counts(m + timedelta(days=1), 1, {})


@pytest.fixture
def twin_url(database_url: str, tmp_path: Any) -> Iterator[str]:
    """A second, empty database of the same kind as ``database_url``."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'twin.db'}"
        return
    with private_schema() as url:
        yield url


def _loaded(url: str) -> Storage:
    storage = Storage(create_sql_engine(url), service="test-context")
    storage.migrate()
    stream = random_stream(500, 48, seed=11, prefix="sh")
    processor = ConversationProcessor(storage, MemoryCandidateCache(ttl=3600))
    for start in range(0, len(stream), 100):
        processor.process([Incoming(f"id-{e.conversation_id}", e) for e in stream[start : start + 100]])
    return storage


def _effects(storage: Storage) -> tuple[dict[tuple[str, str], Status], list[tuple[str, str, int, bytes]]]:
    """Every pair's status, and the status_changed outbox rows (id, subject, sequence, data), by id."""
    t = storage.outbox.table
    with storage.engine.connect() as connection:
        statuses = {(p.user_a, p.user_b): p.status for p in storage.all_pairs(connection)}
        rows = connection.execute(
            sa.select(t.c.event_id, t.c.subject, t.c.sequence, t.c.data)
            .where(t.c.event_type.endswith("status_changed.v1"))
            .order_by(t.c.event_id)
        ).all()
    return statuses, [tuple(row) for row in rows]  # type: ignore[misc]


def test_shards_add_up_to_the_whole_recompute_on_the_same_data(database_url: str, twin_url: str) -> None:
    whole_db, sharded_db = _loaded(database_url), _loaded(twin_url)
    try:
        before = _effects(sharded_db)
        assert _effects(whole_db) == before, "the same data in both"
        whole = decay_recompute(whole_db, MemoryCandidateCache(ttl=3600), MIDNIGHT, chunk=CHUNK)

        # the shards side by side, as the chord's members run them: they lock disjoint rows
        with ThreadPoolExecutor(SHARDS) as pool:
            parts = list(
                pool.map(lambda i: lower_decayed(sharded_db, MIDNIGHT, shard=i, of=SHARDS, chunk=CHUNK), range(SHARDS))
            )
        reports = [report for report, _ in parts]
        assert all(r.examined > 0 for r in reports), "every shard has pairs of its own"
        assert sum(whole.lowered.values()) > 20 and whole.lowered[Status.stranger] > 0, "a recompute worth testing"
        assert DecayReport.total(MIDNIGHT, reports) == whole

        # the same effects, row for row: statuses, and status_changed events with the same ids and versions
        assert _effects(sharded_db) == _effects(whole_db)
        after = _effects(sharded_db)
        assert len(after[1]) - len(before[1]) == sum(whole.lowered.values()), "one event per lowered pair"
        changed = {pair for pair, status in after[0].items() if before[0][pair] is not status}
        touched = set().union(*(users for _, users in parts))
        assert touched == {user for pair in changed for user in pair}
        with sharded_db.engine.connect() as connection:
            assert set(sharded_db.users_changed_since(connection, datetime.now(UTC) - timedelta(minutes=5))) >= touched

        # a tick run again after a crash changes nothing, shard by shard
        again = [lower_decayed(sharded_db, MIDNIGHT, shard=i, of=SHARDS, chunk=CHUNK)[0] for i in range(SHARDS)]
        assert sum(r.examined for r in again) == whole.examined - whole.lowered[Status.stranger]  # strangers now
        assert sum(sum(r.lowered.values()) for r in again) == 0
    finally:
        whole_db.engine.dispose()
        sharded_db.engine.dispose()


def test_a_shard_number_outside_the_shards_is_refused(database_url: str) -> None:
    storage = Storage(create_sql_engine(database_url), service="test-context")
    try:
        with pytest.raises(ValueError):
            lower_decayed(storage, MIDNIGHT, shard=SHARDS, of=SHARDS)
    finally:
        storage.engine.dispose()
