"""The SQL inbox and outbox on SQLite and PostgreSQL: claims, idempotent writes, leases, backlog."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from eventbus import ConfigurationError, Inbox, Outbox, OutboxEntry, create_sql_engine, run_transaction
from eventbus_contracts import REGISTRY, ConversationEndedV1

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def conversation(n: int) -> ConversationEndedV1:
    return ConversationEndedV1(
        conversation_id=f"conv_{n}",
        participants=["u_1", "u_2"],
        started_at=T0,
        ended_at=T0 + timedelta(minutes=n),
        message_count=2,
        messages_by_participant={"u_1": 1, "u_2": 1},
    )


@pytest.fixture
def inbox(engine: sa.Engine) -> Inbox:
    inbox = Inbox("svc-a")
    inbox.create_schema(engine)
    return inbox


@pytest.fixture
def outbox(engine: sa.Engine) -> Outbox:
    outbox = Outbox(REGISTRY)
    outbox.create_schema(engine)
    return outbox


def test_inbox_claims_each_id_once_per_consumer(engine: sa.Engine, inbox: Inbox) -> None:
    with engine.begin() as connection:
        assert inbox.claim_many(connection, ["e1", "e2", "e2", "e3"]) == {"e1", "e2", "e3"}
    with engine.begin() as connection:
        assert inbox.claim_many(connection, ["e2", "e4"]) == {"e4"}
        assert inbox.claim(connection, "e1") is False
        assert inbox.seen(connection, "e3") and not inbox.seen(connection, "e9")
    other = Inbox("svc-b", metadata=inbox.metadata)
    with engine.begin() as connection:
        assert other.claim(connection, "e1") is True  # another consumer has its own ids
        assert inbox.count(connection) == 4 and other.count(connection) == 1


def test_a_rolled_back_claim_is_not_a_claim(engine: sa.Engine, inbox: Inbox) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), engine.begin() as connection:
        assert inbox.claim(connection, "e1")
        raise Boom
    with engine.begin() as connection:
        assert inbox.claim(connection, "e1") is True


def test_inbox_rejects_unusable_ids_and_purges_old_ones(engine: sa.Engine, inbox: Inbox) -> None:
    with engine.begin() as connection, pytest.raises(ValueError, match="1 to 255"):
        inbox.claim(connection, "")
    with engine.begin() as connection:
        inbox.claim(connection, "old", now=T0 - timedelta(days=40))
        inbox.claim(connection, "new", now=T0)
        assert inbox.purge(connection, older_than=T0 - timedelta(days=30)) == 1
        assert not inbox.seen(connection, "old") and inbox.seen(connection, "new")


def test_outbox_writes_are_idempotent_by_event_id_and_decode_back(engine: sa.Engine, outbox: Outbox) -> None:
    entries = [OutboxEntry(conversation(n), event_id=f"id-{n}", subject=f"conv_{n}", time=T0) for n in range(3)]
    with engine.begin() as connection:
        assert outbox.add_many(connection, entries) == 3
    with engine.begin() as connection:
        outbox.add_many(connection, entries[1:])  # a repeated job writes the same ids again
        assert outbox.pending_count(connection) == 3
        claimed = outbox.claim(connection, limit=10, lease=timedelta(seconds=30))
    assert [m.event_id for m in claimed] == ["id-0", "id-1", "id-2"]
    assert [m.attempts for m in claimed] == [1, 1, 1]
    assert claimed[0].subject == "conv_0" and claimed[0].time == T0
    assert outbox.decode(claimed[2]) == conversation(2)


def test_claims_are_leases_and_sent_rows_leave_the_backlog(engine: sa.Engine, outbox: Outbox) -> None:
    with engine.begin() as connection:
        outbox.add_many(connection, [OutboxEntry(conversation(n), event_id=f"id-{n}") for n in range(4)], now=T0)
    with engine.begin() as connection:
        first = outbox.claim(connection, limit=2, lease=timedelta(minutes=1), now=T0)
        second = outbox.claim(connection, limit=10, lease=timedelta(minutes=1), now=T0)
    assert [m.event_id for m in first] == ["id-0", "id-1"]
    assert [m.event_id for m in second] == ["id-2", "id-3"]  # leased rows are not handed out twice
    with engine.begin() as connection:
        assert outbox.claim(connection, limit=10, lease=timedelta(minutes=1), now=T0) == []
        outbox.mark_sent(connection, [first[0].seq], now=T0)
        outbox.mark_sent(connection, [first[1].seq], outcome="unroutable", now=T0)
        outbox.release(connection, second[0].seq, error="PublishTimeoutError: no confirm", retry_at=T0)
        assert outbox.pending_count(connection) == 2
    # the released row is available again at once; the other leased one after its lease
    with engine.begin() as connection:
        again = outbox.claim(connection, limit=10, lease=timedelta(minutes=1), now=T0 + timedelta(seconds=1))
        assert [(m.event_id, m.attempts) for m in again] == [("id-2", 2)]
        later = outbox.claim(connection, limit=10, lease=timedelta(minutes=1), now=T0 + timedelta(minutes=2))
        assert [m.event_id for m in later] == ["id-2", "id-3"]
        rows = connection.execute(
            sa.select(outbox.table.c.event_id, outbox.table.c.outcome, outbox.table.c.last_error).order_by("seq")
        ).all()
    assert rows[0][1] == "published" and rows[1][1] == "unroutable"
    assert rows[2][2] == "PublishTimeoutError: no confirm"


@pytest.mark.postgres
def test_concurrent_relays_claim_disjoint_rows_on_postgres(postgres_url: str) -> None:
    engine = create_sql_engine(postgres_url)
    outbox = Outbox(REGISTRY)
    outbox.create_schema(engine)
    with engine.begin() as connection:
        outbox.add_many(connection, [OutboxEntry(conversation(n), event_id=f"id-{n}") for n in range(6)])
    with engine.connect() as one, engine.connect() as two, one.begin(), two.begin():
        a = outbox.claim(one, limit=3, lease=timedelta(minutes=1))
        b = outbox.claim(two, limit=10, lease=timedelta(minutes=1))  # skips the rows locked by `one`
    assert {m.event_id for m in a}.isdisjoint({m.event_id for m in b})
    assert len(a) + len(b) == 6
    engine.dispose()


def test_run_transaction_commits_or_rolls_back(engine: sa.Engine, inbox: Inbox) -> None:
    assert run_transaction(engine, lambda c: inbox.claim(c, "x")) is True

    def failing(connection: sa.Connection) -> None:
        inbox.claim(connection, "y")
        raise RuntimeError("nope")

    with pytest.raises(RuntimeError):
        run_transaction(engine, failing)
    with engine.begin() as connection:
        assert inbox.seen(connection, "x") and not inbox.seen(connection, "y")


@pytest.mark.parametrize(
    ("url", "message"),
    [("mysql://root@localhost/x", "not supported"), ("sqlite://", "in-memory"), ("nonsense", "not a database URL")],
)
def test_unsupported_database_urls_are_configuration_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        create_sql_engine(url)


def test_published_rows_can_be_purged_pending_ones_never(engine: sa.Engine, outbox: Outbox) -> None:
    with engine.begin() as connection:
        outbox.add_many(connection, [OutboxEntry(conversation(n), event_id=f"id-{n}") for n in range(3)], now=T0)
        first, second, _ = outbox.claim(connection, limit=3, lease=timedelta(minutes=1), now=T0)
        outbox.mark_sent(connection, [first.seq], now=T0 - timedelta(days=8))
        outbox.mark_sent(connection, [second.seq], now=T0)
        assert outbox.purge_sent(connection, older_than=T0 - timedelta(days=7)) == 1
        remaining = connection.execute(sa.select(outbox.table.c.event_id).order_by("seq")).scalars().all()
    assert remaining == ["id-1", "id-2"]
