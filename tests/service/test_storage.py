"""The write path on SQLite and PostgreSQL: one transaction per batch, dedup, derived events,
decay recompute and the candidate cache (no broker involved)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from context_handling.cache import CachedCandidates, MemoryCandidateCache, RedisCandidateCache
from context_handling.candidates import friend_graph, rank_candidates
from context_handling.derived import derived_event_id
from context_handling.jobs import decay_recompute, rebuild_candidate_caches, stale_cache_users
from context_handling.processor import ConversationProcessor, Incoming, Outcome
from context_handling.scoring import Status
from context_handling.storage import SCHEMA_VERSION, Storage
from eventbus import ConfigurationError, create_sql_engine
from eventbus_contracts import REGISTRY

from .._databases import REDIS_URL
from ._conversations import T0, conversation, random_stream, reference_states

DAY = timedelta(days=1)


@pytest.fixture
def storage(database_url: str) -> Iterator[Storage]:
    engine = create_sql_engine(database_url)
    storage = Storage(engine, service="test-context")
    storage.migrate()
    yield storage
    engine.dispose()


@pytest.fixture
def processor(storage: Storage) -> ConversationProcessor:
    return ConversationProcessor(storage, MemoryCandidateCache(ttl=3600))


def incoming(event, event_id: str | None = None) -> Incoming:  # type: ignore[no-untyped-def]
    return Incoming(event_id or f"id-{event.conversation_id}", event)


def outbox_rows(storage: Storage) -> list[tuple[str, str, dict]]:
    with storage.engine.connect() as connection:
        rows = connection.execute(
            sa.select(
                storage.outbox.table.c.event_id, storage.outbox.table.c.event_type, storage.outbox.table.c.data
            ).order_by(storage.outbox.table.c.seq)
        ).all()
    return [
        (event_id, event_type, REGISTRY.get(event_type).decode(data).model_dump(mode="json", exclude_none=True))
        for event_id, event_type, data in rows
    ]


def pairs(storage: Storage) -> dict[tuple[str, str], tuple[float, datetime | None, Status]]:
    with storage.engine.connect() as connection:
        return {(p.user_a, p.user_b): (p.strength, p.t_ref, p.status) for p in storage.all_pairs(connection)}


def test_migrate_is_idempotent_and_refuses_a_newer_schema(storage: Storage) -> None:
    assert storage.migrate() == SCHEMA_VERSION
    with storage.engine.begin() as connection:
        connection.execute(storage.schema.update().values(version=SCHEMA_VERSION + 1))
    with pytest.raises(ConfigurationError, match="newer than this service"):
        storage.migrate()


def test_one_conversation_updates_pairs_inbox_and_outbox_together(
    storage: Storage, processor: ConversationProcessor
) -> None:
    event = conversation(1, ["u_b", "u_a", "u_c"], T0, minutes=30)  # 10 messages each
    result = processor.process([incoming(event)])
    assert result.outcomes == [Outcome.applied]
    expected = reference_states([event])
    assert len(expected) == 3
    stored = pairs(storage)
    for key, state in expected.items():
        # 2·log2(31) + 30/12 = 12.41: each pair becomes an acquaintance
        assert stored[key] == (pytest.approx(state.strength), T0, Status.acquaintance)
    rows = outbox_rows(storage)
    changes = [r for r in rows if r[1] == "context.friendship.status_changed.v1"]
    updates = [r for r in rows if r[1] == "context.candidates.updated.v1"]
    assert len(changes) == 3 and len(updates) == 3
    assert {(c[2]["user_a"], c[2]["user_b"]) for c in changes} == set(expected)
    assert all(c[2]["previous_status"] == "stranger" and c[2]["status"] == "acquaintance" for c in changes)
    assert all(c[2]["cause"] == "conversation" and c[2]["conversation_id"] == "conv_1" for c in changes)
    assert changes[0][0] == derived_event_id("status", "id-conv_1", "u_a/u_b")
    assert {u[2]["user_id"] for u in updates} == {"u_a", "u_b", "u_c"}
    with storage.engine.connect() as connection:
        assert storage.inbox.seen(connection, "id-conv_1")


def test_duplicates_in_a_batch_and_across_batches_change_nothing(
    storage: Storage, processor: ConversationProcessor
) -> None:
    first = conversation(1, ["u_a", "u_b"], T0)
    result = processor.process([incoming(first), incoming(first)])
    assert result.outcomes == [Outcome.applied, Outcome.duplicate]
    before, rows = pairs(storage), len(outbox_rows(storage))
    again = processor.process([incoming(first), incoming(conversation(1, ["u_a", "u_b"], T0 + DAY), "id-conv_1")])
    assert again.outcomes == [Outcome.duplicate, Outcome.duplicate]
    assert pairs(storage) == before and len(outbox_rows(storage)) == rows


def test_batches_in_any_order_reach_the_domain_core_state(storage: Storage, processor: ConversationProcessor) -> None:
    stream = random_stream(120, 18, seed=3, prefix="ooo")
    shuffled = stream[::-1]
    for start in range(0, len(shuffled), 25):  # reversed, in batches of 25
        processor.process([incoming(e) for e in shuffled[start : start + 25]])
    expected = reference_states(stream)
    stored = pairs(storage)
    assert set(stored) == set(expected)
    for key, state in expected.items():
        strength, t_ref, status = stored[key]
        assert strength == pytest.approx(state.strength, rel=1e-9, abs=1e-12)
        assert t_ref == state.t_ref
        assert status is state.status
    assert any(s.is_friend for s in (v.status for v in expected.values())), "the stream should make friends"


def test_invalid_conversations_are_rejected_alone_and_not_claimed(
    storage: Storage, processor: ConversationProcessor
) -> None:
    good = conversation(1, ["u_a", "u_b"], T0)
    bad = conversation(2, ["u_a", "u_c"], T0, messages={"u_a": 1, "u_z": 3})
    result = processor.process([incoming(bad), incoming(good)])
    assert result.outcomes == [Outcome.rejected, Outcome.applied]
    assert "non-participants" in str(result.errors[0])
    assert set(pairs(storage)) == {("u_a", "u_b")}
    with storage.engine.connect() as connection:
        assert not storage.inbox.seen(connection, "id-conv_2")


def test_candidates_in_the_outbox_and_cache_match_the_ranking_of_the_stored_graph(
    storage: Storage, processor: ConversationProcessor
) -> None:
    stream = random_stream(150, 12, seed=5, prefix="cand")
    processor.process([incoming(e) for e in stream])
    with storage.engine.connect() as connection:
        graph = friend_graph((p.user_a, p.user_b, p.score) for p in storage.all_pairs(connection) if p.status.is_friend)
    cached = processor.cache.get_many(sorted(graph))
    assert cached, "some users should have friends"
    for user, entry in cached.items():
        assert entry.candidates == rank_candidates(user, graph)
    last_update = {
        r[2]["user_id"]: r[2]["candidates"] for r in outbox_rows(storage) if r[1].endswith("candidates.updated.v1")
    }
    for user, candidates in last_update.items():
        expected = rank_candidates(user, graph)
        assert [(c["user_id"], c["mutual_friends"]) for c in candidates] == [
            (c.user_id, c.mutual_friends) for c in expected
        ]


def test_derived_events_are_numbered_per_pair_and_per_user_in_commit_order(
    storage: Storage, processor: ConversationProcessor
) -> None:
    """Each derived event's ordering key is its pair or user, and its payload version is that key's
    sequence: 1, 2, 3 … per key in the order the rows were written, conversations and decay alike."""
    talks = [
        conversation(n, ["u_a", "u_b"], T0 + n * timedelta(hours=1), minutes=120, messages={"u_a": 40, "u_b": 40})
        for n in range(4)
    ]
    processor.process([incoming(talks[0])])
    processor.process([incoming(e) for e in talks[1:]])  # three in one batch: one transaction
    decay_recompute(storage, processor.cache, datetime(2026, 11, 1, tzinfo=UTC))
    t = storage.outbox.table
    with storage.engine.connect() as connection:
        rows = connection.execute(
            sa.select(t.c.event_type, t.c.partition_key, t.c.sequence, t.c.data).order_by(t.c.seq)
        ).all()
    numbered: dict[str, list[int]] = {}
    for event_type, key, sequence, data in rows:
        payload = REGISTRY.get(event_type).decode(data)
        expected_key = payload.user_id if event_type.endswith("candidates.updated.v1") else "u_a/u_b"
        assert key == expected_key and payload.version == sequence
        numbered.setdefault(key, []).append(sequence)
    assert numbered["u_a/u_b"] == [1, 2, 3, 4], "acquaintance, friend, close friend, then the decay"
    assert numbered["u_a"] == numbered["u_b"] == [1, 2, 3, 4]


def test_decay_recompute_lowers_statuses_once_with_deterministic_events(
    storage: Storage, processor: ConversationProcessor
) -> None:
    # u_a-u_b: 4 long balanced conversations → S ≈ 80 (close_friend); u_a-u_c: one → acquaintance
    talks = [
        conversation(n, ["u_a", "u_b"], T0 + n * timedelta(hours=1), minutes=120, messages={"u_a": 40, "u_b": 40})
        for n in range(4)
    ]
    processor.process([incoming(e) for e in [*talks, conversation(9, ["u_a", "u_c"], T0)]])
    before = pairs(storage)
    assert before[("u_a", "u_b")][2] is Status.close_friend
    midnight = datetime(2026, 11, 1, tzinfo=UTC)  # ~30.5 days later: S·0.49 ≈ 39 → acquaintance
    report = decay_recompute(storage, processor.cache, midnight)
    assert report.lowered[Status.acquaintance] == 1 and report.lowered[Status.stranger] == 1
    after = pairs(storage)
    assert after[("u_a", "u_b")] == (before[("u_a", "u_b")][0], before[("u_a", "u_b")][1], Status.acquaintance)
    assert after[("u_a", "u_c")][2] is Status.stranger
    decays = [r for r in outbox_rows(storage) if r[1].endswith("status_changed.v1") and r[2]["cause"] == "decay"]
    assert {(d[2]["user_b"], d[2]["previous_status"], d[2]["status"]) for d in decays} == {
        ("u_b", "close_friend", "acquaintance"),
        ("u_c", "acquaintance", "stranger"),
    }
    assert all(d[2]["changed_at"] == "2026-11-01T00:00:00Z" and "conversation_id" not in d[2] for d in decays)
    assert decays[0][0] == derived_event_id("status", "job:decay-recompute:2026-11-01T00:00:00Z", "u_a/u_b")
    # run again for the same midnight: nothing left to lower, nothing new to publish
    rows = len(outbox_rows(storage))
    again = decay_recompute(storage, processor.cache, midnight)
    assert sum(again.lowered.values()) == 0 and len(outbox_rows(storage)) == rows
    # a midnight before T_ref changes nothing (the score never rises by "decay")
    assert sum(decay_recompute(storage, processor.cache, T0 - DAY).lowered.values()) == 0


def test_stale_and_missing_cache_entries_are_found_and_rebuilt(
    storage: Storage, processor: ConversationProcessor
) -> None:
    processor.process([incoming(e) for e in random_stream(40, 8, seed=1, prefix="st")])
    assert stale_cache_users(storage, processor.cache) == []
    processor.cache.delete_many(["st_000"])  # a cache write lost after a commit
    old = processor.cache.get_many(["st_001"])["st_001"]  # written before the user's latest pair change
    processor.cache.put_many({"st_001": CachedCandidates("st_001", old.candidates, old.computed_at, T0)})
    assert stale_cache_users(storage, processor.cache) == ["st_000", "st_001"]
    rebuild_candidate_caches(storage, processor.cache, ["st_000", "st_001"])
    assert stale_cache_users(storage, processor.cache) == []


@pytest.mark.redis
def test_redis_cache_round_trip_with_prefix_and_ttl(redis_prefix: str) -> None:
    import redis

    from context_handling.candidates import RankedCandidate

    cache = RedisCandidateCache(REDIS_URL, prefix=redis_prefix, ttl=120)
    entry = CachedCandidates("u_1", [RankedCandidate("u_9", 42.5, 2)], T0, datetime.now(UTC))
    cache.put_many({"u_1": entry})
    assert cache.get_many(["u_1", "u_2"]) == {"u_1": entry}
    client = redis.Redis.from_url(REDIS_URL)
    assert 0 < client.ttl(f"{redis_prefix}candidates:u_1") <= 120
    cache.delete_many(["u_1"])
    assert cache.get_many(["u_1"]) == {}
    cache.close()
    client.close()


def test_memory_cache_expires_entries() -> None:
    cache = MemoryCandidateCache(ttl=0)
    cache.put_many({"u": CachedCandidates("u", [], T0, T0)})
    assert cache.get_many(["u"]) == {}
    assert uuid.UUID(derived_event_id("a", "b", "c"))  # ids are UUIDs


def test_derived_event_ids_are_uuid5_of_kind_cause_and_subject() -> None:
    from context_handling.derived import NAMESPACE

    for kind, cause, about in [("status", "id-1", "u_a/u_b"), ("candidates", str(uuid.uuid4()), "ü_ß")]:
        expected = str(uuid.uuid5(NAMESPACE, f"{kind}\x1f{cause}\x1f{about}"))
        assert derived_event_id(kind, cause, about) == expected
