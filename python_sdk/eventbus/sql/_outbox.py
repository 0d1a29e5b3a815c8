"""The transactional outbox: events to publish, written in the same transaction as the state change.

Publishing straight from a handler has two failure windows: the database commits and the process
dies before the publish (the event is lost), or the publish succeeds and the transaction rolls
back (the event announces a change that never happened). Writing the event as a row in the same
transaction closes both: the change and the event commit together, and ``OutboxRelay`` publishes
committed rows afterwards with publisher confirms, marking each one sent.

The relay can publish a row more than once (it dies after the confirm, before marking the row),
so every row carries a deterministic ``event_id`` chosen by the producer: a consumer that
deduplicates by event id (its own ``Inbox``) applies it once. That is what "exactly once" means
on an at-least-once bus: each change is *applied* once by each consumer, whatever the number of
deliveries.

Rows may carry a ``partition_key`` (the pair, the user, the order: whatever a consumer must see
in order). Rows of one key leave in commit order, also after a relay crash: the relay claims a
keyed row only when no earlier row of its key is unsent, so a dead relay's leased row holds its
key back until its lease ends and is then published first. Each keyed row also gets the key's
next ``sequence``, counted in a second table in the producer's transaction, which the relay
writes as the CloudEvents ``partitionkey`` and ``sequence`` attributes: a consumer that keeps the
last sequence it applied per key drops any stale copy (docs/ordering.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from .._contract import ContractRegistry, EventContract, contract_for
from ._bulk import bulk_increment, bulk_insert, column_in
from ._sql import UtcDateTime, define_table, require_sqlalchemy

if TYPE_CHECKING:
    from sqlalchemy import MetaData
    from sqlalchemy.engine import Connection, Engine

__all__ = ["Outbox", "OutboxEntry", "OutboxMessage"]

MAX_ERROR_TEXT = 2000
MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One event to write to the outbox; ``event_id`` should be derived from what caused it.

    ``partition_key`` orders the event after every earlier event of the same key. ``sequence`` is
    left empty for ``add_many`` to assign, unless the caller took it from ``next_sequences`` in the
    same transaction (to put the same number in the payload too).
    """

    event: BaseModel
    event_id: str
    subject: str | None = None
    time: datetime | None = None
    partition_key: str | None = None
    sequence: int | None = None


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A committed outbox row claimed for publishing."""

    seq: int
    event_id: str
    event_type: str
    subject: str | None
    time: datetime
    data: bytes
    attempts: int
    partition_key: str | None = None
    sequence: int | None = None


class Outbox:
    """Rows of events waiting to be published, in the service's own database.

    ``contracts`` lets the relay turn rows written by an earlier process back into models; the
    contract of every event passed to ``add`` is learnt as well. Two tables: ``table_name`` for
    the rows and ``<table_name>_keys`` for the last sequence given to each partition key (never
    purged: a key's sequence must keep growing after its rows are gone).
    """

    def __init__(
        self,
        contracts: Iterable[EventContract[Any]] = (),
        *,
        table_name: str = "eventbus_outbox",
        metadata: MetaData | None = None,
    ) -> None:
        require_sqlalchemy()
        import sqlalchemy as sa

        self.contracts = ContractRegistry(contracts)
        pending = sa.text("sent_at IS NULL")
        keyed = sa.text("sent_at IS NULL AND partition_key IS NOT NULL")
        key_index = f"ix_{table_name}_key_pending"
        self.table = define_table(
            metadata,
            table_name,
            sa.Column(
                "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
            ),
            sa.Column("event_id", sa.String(255), nullable=False, unique=True),
            sa.Column("event_type", sa.String(255), nullable=False),
            sa.Column("subject", sa.String(255)),
            sa.Column("event_time", UtcDateTime, nullable=False),
            sa.Column("data", sa.LargeBinary, nullable=False),
            sa.Column("created_at", UtcDateTime, nullable=False),
            # A pending row may be claimed once available_at has passed: a claim pushes it out by the
            # lease, a failed publish by the backoff, so a relay that died frees its rows.
            sa.Column("available_at", UtcDateTime, nullable=False),
            sa.Column("attempts", sa.Integer, nullable=False, default=0),
            sa.Column("last_error", sa.Text),
            sa.Column("sent_at", UtcDateTime),
            sa.Column("outcome", sa.String(20)),
            sa.Column("partition_key", sa.String(MAX_KEY_LENGTH)),
            sa.Column("sequence", sa.BigInteger),
            # Only pending rows are indexed for the relay's scan; sent rows cost it nothing.
            sa.Index(f"ix_{table_name}_pending", "seq", postgresql_where=pending, sqlite_where=pending),
            # Where the claim finds the head (unsent row with the smallest sequence) of each key.
            sa.Index(key_index, "partition_key", "sequence", postgresql_where=keyed, sqlite_where=keyed),
        )
        self._key_index = next(index for index in self.table.indexes if index.name == key_index)
        self.sequences = define_table(
            self.table.metadata,
            f"{table_name}_keys",
            sa.Column("partition_key", sa.String(MAX_KEY_LENGTH), primary_key=True),
            sa.Column("last_sequence", sa.BigInteger, nullable=False),
        )
        self.metadata = self.table.metadata

    def create_schema(self, bind: Any) -> None:
        """Create the tables and their indexes if they do not exist, and upgrade an older outbox table
        (idempotent)."""
        self.table.create(bind, checkfirst=True)
        self.sequences.create(bind, checkfirst=True)
        self.upgrade_schema(bind)

    def upgrade_schema(self, bind: Engine | Connection) -> list[str]:
        """Add what an outbox table made by an older eventbus lacks; returns the columns added.

        Both columns are nullable, so the upgrade is an instant ``ALTER TABLE … ADD COLUMN`` on
        SQLite and PostgreSQL alike, and rows already there keep the unordered behaviour they
        were written with. ``create_schema`` runs it; a service that makes the SDK's tables with
        its own ``metadata.create_all`` calls it after (``create_all`` skips existing tables).
        """
        import sqlalchemy as sa
        from sqlalchemy.engine import Engine

        if isinstance(bind, Engine):
            with bind.begin() as connection:
                return self.upgrade_schema(connection)
        present = {c["name"] for c in sa.inspect(bind).get_columns(self.table.name, schema=self.table.schema)}
        added = [name for name in ("partition_key", "sequence") if name not in present]
        preparer = bind.dialect.identifier_preparer
        for name in added:
            column = self.table.c[name]
            bind.execute(
                sa.text(
                    f"ALTER TABLE {preparer.format_table(self.table)} ADD COLUMN "
                    f"{preparer.format_column(column)} {column.type.compile(dialect=bind.dialect)}"
                )
            )
        self._key_index.create(bind, checkfirst=True)
        return added

    # -- writing, inside the caller's transaction ------------------------------------------------

    def add(
        self,
        connection: Connection,
        event: BaseModel,
        *,
        event_id: str,
        subject: str | None = None,
        time: datetime | None = None,
        partition_key: str | None = None,
    ) -> None:
        """Write one event (validated against its contract now, not at publish time)."""
        self.add_many(connection, [OutboxEntry(event, event_id, subject, time, partition_key)])

    def next_sequences(self, connection: Connection, keys: Sequence[str]) -> list[int]:
        """One new sequence number for each of ``keys`` (repeats allowed), in order.

        The numbers grow strictly per key in commit order: the key's counter row stays locked
        until this transaction ends, so a concurrent producer of the same key waits and then
        counts on from here. A rolled-back transaction gives its numbers back; an entry skipped
        as a duplicate leaves a gap, which consumers tolerate (they only compare).
        """
        for key in keys:
            if not key or len(key) > MAX_KEY_LENGTH:
                raise ValueError(f"a partition key must be 1 to {MAX_KEY_LENGTH} characters, got {key!r}")
        wanted = Counter(keys)
        totals = bulk_increment(connection, self.sequences, "partition_key", "last_sequence", wanted)
        following = {key: totals[key] - count + 1 for key, count in wanted.items()}
        numbers = []
        for key in keys:
            numbers.append(following[key])
            following[key] += 1
        return numbers

    def add_many(self, connection: Connection, entries: Iterable[OutboxEntry], *, now: datetime | None = None) -> int:
        """Write events in one statement; an ``event_id`` already in the outbox is skipped.

        Skipping makes a re-run of the same work (a job repeated after a crash) harmless.
        Entries with a ``partition_key`` and no ``sequence`` get the key's next ones here.
        Returns the number of rows written.
        """
        moment = now or datetime.now(UTC)
        entries = list(entries)
        unnumbered = [n for n, e in enumerate(entries) if e.partition_key is not None and e.sequence is None]
        if unnumbered:
            numbers = self.next_sequences(connection, [entries[n].partition_key or "" for n in unnumbered])
            for n, number in zip(unnumbered, numbers, strict=True):
                entries[n] = replace(entries[n], sequence=number)
        rows = []
        for entry in entries:
            contract = contract_for(entry.event)
            if contract.type not in self.contracts:
                self.contracts.add(contract)
            rows.append(
                {
                    "event_id": entry.event_id,
                    "event_type": contract.type,
                    "subject": entry.subject,
                    "event_time": entry.time or moment,
                    "data": contract.encode(entry.event),
                    "partition_key": entry.partition_key,
                    "sequence": entry.sequence,
                }
            )
        if not rows:
            return 0
        same = {"created_at": moment, "available_at": moment, "attempts": 0}
        return len(bulk_insert(connection, self.table, rows, returning="seq", same=same))

    # -- the relay's side ------------------------------------------------------------------------

    def claim(
        self, connection: Connection, *, limit: int, lease: timedelta, now: datetime | None = None
    ) -> list[OutboxMessage]:
        """Take up to ``limit`` available pending rows for ``lease``, oldest first.

        A keyed row is taken only when it is the head of its key: no row of the same key with a
        smaller sequence is unsent, whether that row is leased, backing off or available. So a
        batch holds at most one row per key, the next one becomes claimable once this one is
        recorded sent, and a dead relay's row blocks its key until its lease ends.

        On PostgreSQL, ``FOR UPDATE SKIP LOCKED`` lets several relays claim disjoint rows at
        once; SQLite serializes writers anyway. The head test needs no lock: a relay that sees an
        earlier row unsent skips the row, and a sent row never becomes unsent again; a row that
        another relay claimed meanwhile is locked (skipped) or, once that relay committed, leased
        (PostgreSQL re-checks ``available_at`` on the newest version). A claim is a lease, not a
        lock held during the publish, so a relay that dies mid-publish delays its rows (and their
        keys) by ``lease`` and no more.
        """
        import sqlalchemy as sa

        moment = now or datetime.now(UTC)
        t = self.table
        candidate, unsent = t.alias("candidate"), t.alias("unsent")
        # Each key's head: its unsent row with the smallest sequence. Computed once per claim from
        # the key index (a probe per candidate row instead cost 20 times more on a deep backlog).
        heads = (
            sa.select(unsent.c.partition_key, sa.func.min(unsent.c.sequence))
            .where(unsent.c.sent_at.is_(None), unsent.c.partition_key.is_not(None))
            .group_by(unsent.c.partition_key)
        )
        pending = (
            sa.select(candidate.c.seq)
            .where(
                candidate.c.sent_at.is_(None),
                candidate.c.available_at <= moment,
                sa.or_(
                    candidate.c.partition_key.is_(None),
                    sa.tuple_(candidate.c.partition_key, candidate.c.sequence).in_(heads),
                ),
            )
            .order_by(candidate.c.seq)
            .limit(limit)
            .with_for_update(skip_locked=True, of=candidate)
        )
        statement = (
            t.update()
            .where(t.c.seq.in_(pending.scalar_subquery()))
            .values(available_at=moment + lease, attempts=t.c.attempts + 1)
            .returning(
                t.c.seq, t.c.event_id, t.c.event_type, t.c.subject, t.c.event_time, t.c.data, t.c.attempts,
                t.c.partition_key, t.c.sequence,
            )
        )
        messages = [OutboxMessage(*row) for row in connection.execute(statement)]
        messages.sort(key=lambda m: m.seq)
        return messages

    def mark_sent(
        self, connection: Connection, seqs: Sequence[int], *, outcome: str = "published", now: datetime | None = None
    ) -> None:
        """Record rows as done; ``outcome`` says how (``published``, or ``unroutable``: no queue bound)."""
        if not seqs:
            return
        t = self.table
        # One array parameter on PostgreSQL (``seq = ANY(…)``): the statement's text stays the same for any
        # number of rows, so it is converted and planned once, not once per batch size.
        connection.execute(
            t.update()
            .where(column_in(connection, t.c.seq, seqs))
            .values(sent_at=now or datetime.now(UTC), outcome=outcome)
        )

    def release(self, connection: Connection, seq: int, *, error: str, retry_at: datetime) -> None:
        """Give a row back after a failed publish, to be retried at ``retry_at``."""
        t = self.table
        text = error if len(error) <= MAX_ERROR_TEXT else error[: MAX_ERROR_TEXT - 1] + "…"
        connection.execute(t.update().where(t.c.seq == seq).values(available_at=retry_at, last_error=text))

    def decode(self, message: OutboxMessage) -> BaseModel:
        """The row's event as its model again (the data was validated when it was written)."""
        contract = self.contracts.get(message.event_type)
        return contract.model.model_validate_json(message.data)

    def pending_count(self, connection: Connection) -> int:
        """Rows not yet published (the backlog)."""
        import sqlalchemy as sa

        t = self.table
        return int(connection.execute(sa.select(sa.func.count()).where(t.c.sent_at.is_(None))).scalar_one())

    def purge_sent(self, connection: Connection, older_than: datetime) -> int:
        """Delete rows published before ``older_than``; returns how many."""
        t = self.table
        result: Any = connection.execute(t.delete().where(t.c.sent_at.is_not(None), t.c.sent_at < older_than))
        return int(result.rowcount or 0)
