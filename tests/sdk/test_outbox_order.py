"""Per-key order through the outbox, on SQLite and PostgreSQL: the claim rule, the per-key sequence,
the upgrade of an older table, and the crash that used to reorder a key (issue 11)."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from eventbus import BusSettings, EventBus, Outbox, OutboxEntry, OutboxRelay, create_sql_engine, run_transaction
from eventbus_contracts import REGISTRY, FriendshipStatusChangedV1

from .._taps import take_matching
from ..conftest import RawBroker

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=1)


def change(n: int, pair: str = "a/b") -> FriendshipStatusChangedV1:
    a, b = pair.split("/")
    return FriendshipStatusChangedV1(
        user_a=a, user_b=b, previous_status="stranger", status="friend", score=float(n), changed_at=T0,
        cause="conversation", conversation_id=f"conv_{n}",
    )


def entry(name: str, key: str | None) -> OutboxEntry:
    return OutboxEntry(change(0), event_id=name, partition_key=key)


@pytest.fixture
def outbox(engine: sa.Engine) -> Outbox:
    outbox = Outbox(REGISTRY)
    outbox.create_schema(engine)
    return outbox


def claim(engine: sa.Engine, outbox: Outbox, *, limit: int = 100, at: datetime = T0) -> list[str]:
    with engine.begin() as connection:
        return [m.event_id for m in outbox.claim(connection, limit=limit, lease=LEASE, now=at)]


def seqs_of(engine: sa.Engine, outbox: Outbox, names: list[str]) -> list[int]:
    t = outbox.table
    with engine.connect() as connection:
        found = dict(connection.execute(sa.select(t.c.event_id, t.c.seq).where(t.c.event_id.in_(names))).all())
    return [found[n] for n in names]


# -- the claim rule ------------------------------------------------------------------------------


def test_a_claim_takes_the_head_of_each_key_and_every_unkeyed_row(engine: sa.Engine, outbox: Outbox) -> None:
    names = [("k1", "K"), ("k2", "K"), ("l1", "L"), ("u1", None), ("k3", "K"), ("u2", None), ("l2", "L")]
    with engine.begin() as connection:
        outbox.add_many(connection, [entry(n, k) for n, k in names], now=T0)
    assert claim(engine, outbox) == ["k1", "l1", "u1", "u2"]
    assert claim(engine, outbox) == [], "the next rows of K and L wait while their heads are unsent"
    k1, l1, k2 = seqs_of(engine, outbox, ["k1", "l1", "k2"])
    with engine.begin() as connection:
        outbox.mark_sent(connection, [k1], now=T0)
        outbox.mark_sent(connection, [l1], outcome="unroutable", now=T0)
    assert claim(engine, outbox) == ["k2", "l2"], "sent and unroutable both free the key"
    with engine.begin() as connection:
        outbox.mark_sent(connection, [k2], now=T0)
    assert claim(engine, outbox) == ["k3"]


def test_a_dead_relays_row_blocks_its_key_until_its_lease_ends_then_goes_first(
    engine: sa.Engine, outbox: Outbox
) -> None:
    with engine.begin() as connection:
        outbox.add_many(connection, [entry(f"k{n}", "K") for n in range(4)] + [entry("m0", "M")], now=T0)
    assert claim(engine, outbox, limit=1) == ["k0"]  # the relay that dies
    assert claim(engine, outbox) == ["m0"], "other keys go on at once"
    assert claim(engine, outbox, at=T0 + LEASE / 2) == [], "k1..k3 wait for k0, leased or not"
    assert claim(engine, outbox, at=T0 + LEASE * 3) == ["k0", "m0"], "after the leases: k0 first, then m0 again"


def test_a_failed_head_holds_back_the_rest_of_its_key_through_its_backoff(engine: sa.Engine, outbox: Outbox) -> None:
    with engine.begin() as connection:
        outbox.add_many(connection, [entry("k0", "K"), entry("k1", "K")], now=T0)
    assert claim(engine, outbox) == ["k0"]
    [k0] = seqs_of(engine, outbox, ["k0"])
    with engine.begin() as connection:
        outbox.release(connection, k0, error="boom", retry_at=T0 + timedelta(seconds=5))
    assert claim(engine, outbox, at=T0 + timedelta(seconds=1)) == []
    assert claim(engine, outbox, at=T0 + timedelta(seconds=6)) == ["k0"]


def test_rows_written_before_the_upgrade_keep_the_unordered_claim(engine: sa.Engine) -> None:
    """An outbox table made by an older eventbus (no key columns) is upgraded in place by create_schema."""
    name = f"old_outbox_{uuid.uuid4().hex[:8]}"
    old = sa.MetaData()
    sa.Table(
        name, old,
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(255), nullable=False, unique=True),
        sa.Column("event_type", sa.String(255), nullable=False),
        sa.Column("subject", sa.String(255)),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
        sa.Column("last_error", sa.Text),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("outcome", sa.String(20)),
    )
    old.create_all(engine)
    row = {"event_type": "context.friendship.status_changed.v1", "data": b"{}", "event_time": T0.replace(tzinfo=None),
           "created_at": T0.replace(tzinfo=None), "available_at": T0.replace(tzinfo=None), "attempts": 0}
    with engine.begin() as connection:
        connection.execute(old.tables[name].insert(), [{**row, "event_id": f"old-{n}"} for n in range(2)])
    try:
        outbox = Outbox(REGISTRY, table_name=name)
        outbox.create_schema(engine)
        assert outbox.upgrade_schema(engine) == [], "idempotent"
        with engine.begin() as connection:
            outbox.add_many(connection, [entry("k0", "K"), entry("k1", "K")], now=T0)
        assert claim(engine, outbox) == ["old-0", "old-1", "k0"]
        index_names = {i["name"] for i in sa.inspect(engine).get_indexes(name)}
        assert f"ix_{name}_key_pending" in index_names
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP TABLE {name}"))
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {name}_keys"))


# -- the per-key sequence ----------------------------------------------------------------------


def test_sequences_grow_per_key_and_a_skipped_duplicate_only_leaves_a_gap(engine: sa.Engine, outbox: Outbox) -> None:
    with engine.begin() as connection:
        assert outbox.next_sequences(connection, ["K", "L", "K", "K"]) == [1, 1, 2, 3]
        outbox.add_many(connection, [entry("k4", "K"), entry("l2", "L"), entry("u", None)], now=T0)
    with engine.begin() as connection:
        outbox.add_many(connection, [entry("k4", "K"), entry("k6", "K")], now=T0)  # k4 again: skipped
        claimed = outbox.claim(connection, limit=10, lease=LEASE, now=T0)
    assert [(m.event_id, m.partition_key, m.sequence) for m in claimed] == [
        ("k4", "K", 4), ("l2", "L", 2), ("u", None, None)
    ]
    t = outbox.table
    with engine.connect() as connection:
        assert connection.execute(sa.select(t.c.sequence).where(t.c.event_id == "k6")).scalar_one() == 6
    with pytest.raises(ValueError, match="partition key"), engine.begin() as connection:
        outbox.next_sequences(connection, [""])


def test_a_rolled_back_transaction_gives_its_sequences_back(engine: sa.Engine, outbox: Outbox) -> None:
    class Undo(Exception):
        pass

    with pytest.raises(Undo), engine.begin() as connection:
        assert outbox.next_sequences(connection, ["K", "K"]) == [1, 2]
        raise Undo
    with engine.begin() as connection:
        assert outbox.next_sequences(connection, ["K"]) == [1]


@pytest.mark.postgres
def test_concurrent_producers_of_one_key_number_it_in_commit_order(postgres_url: str) -> None:
    """Four producers write 50 transactions each of rows of the same two keys: per key, the
    sequence grows with the row's position (seq), which is the order the relay follows."""
    engine = create_sql_engine(postgres_url, pool_size=4)
    outbox = Outbox(REGISTRY)
    outbox.create_schema(engine)
    errors: list[BaseException] = []

    def produce(worker: int) -> None:
        try:
            for n in range(50):
                keys = ["K", "L"] if (worker + n) % 2 else ["L", "K", "K"]
                entries = [entry(f"w{worker}-{n}-{i}", key) for i, key in enumerate(keys)]
                run_transaction(engine, lambda c, e=entries: outbox.add_many(c, e))
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=produce, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    t = outbox.table
    with engine.connect() as connection:
        rows = connection.execute(sa.select(t.c.partition_key, t.c.sequence).order_by(t.c.seq)).all()
    engine.dispose()
    for key in ("K", "L"):
        numbers = [s for k, s in rows if k == key]
        assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers), key
        assert numbers == list(range(1, len(numbers) + 1)), "no producer rolled back, so no gaps either"


@pytest.mark.postgres
def test_concurrent_relays_never_claim_two_rows_of_one_key(postgres_url: str) -> None:
    engine = create_sql_engine(postgres_url)
    outbox = Outbox(REGISTRY)
    outbox.create_schema(engine)
    with engine.begin() as connection:
        outbox.add_many(connection, [entry(f"{k}{n}", k) for n in range(3) for k in "KLMN"], now=T0)
    with engine.connect() as one, engine.connect() as two, one.begin(), two.begin():
        a = outbox.claim(one, limit=2, lease=LEASE, now=T0)  # K0 and L0, locked until `one` commits
        b = outbox.claim(two, limit=10, lease=LEASE, now=T0)  # skips them, and K1/L1 still wait
    assert [m.event_id for m in a] == ["K0", "L0"]
    assert [m.event_id for m in b] == ["M0", "N0"]
    engine.dispose()


# -- the reproduction, on the real broker ----------------------------------------------------------


@pytest.mark.broker
async def test_four_changes_of_one_pair_leave_in_order_after_a_relay_dies_holding_the_first(
    engine: sa.Engine, outbox: Outbox, settings: BusSettings, raw: RawBroker
) -> None:
    """The issue's reproduction: the first of four changes is claimed by a relay that dies with its
    lease running. The restarted relay used to publish the other three at once and the first one
    after the lease (order 1, 2, 3, 0); now the pair waits for the lease and leaves 0, 1, 2, 3."""
    tag = uuid.uuid4().hex[:8]
    pair = f"a{tag}/b{tag}"
    tap = raw.declare_tap("context", "context.friendship.status_changed.v1")
    with engine.begin() as connection:
        outbox.add_many(
            connection,
            [OutboxEntry(change(n, pair), event_id=f"{tag}-{n}", subject=pair, partition_key=pair) for n in range(4)],
        )
        dead = outbox.claim(connection, limit=1, lease=timedelta(seconds=2))
    assert [m.event_id for m in dead] == [f"{tag}-0"]
    async with EventBus(settings) as bus:
        relay = OutboxRelay(engine, outbox, bus, poll_interval=0.2)
        assert await relay.drain(timeout=30) == 0
    got = take_matching(raw, tap, lambda m: (m.properties.message_id or "").startswith(tag), 4)
    assert [m.properties.message_id for m in got] == [f"{tag}-{n}" for n in range(4)]
    assert [m.headers["cloudEvents_partitionkey"] for m in got] == [pair] * 4
    assert [int(m.headers["cloudEvents_sequence"]) for m in got] == [1, 2, 3, 4]
    assert got[0].headers["cloudEvents_sequence"] == "00000000000000000001"
