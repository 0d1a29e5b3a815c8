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
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ._bulk import bulk_insert, column_in
from ._contract import ContractRegistry, EventContract, contract_for
from ._sql import UtcDateTime, define_table, require_sqlalchemy

if TYPE_CHECKING:
    from sqlalchemy import MetaData
    from sqlalchemy.engine import Connection

__all__ = ["Outbox", "OutboxEntry", "OutboxMessage"]

MAX_ERROR_TEXT = 2000


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One event to write to the outbox; ``event_id`` should be derived from what caused it."""

    event: BaseModel
    event_id: str
    subject: str | None = None
    time: datetime | None = None


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


class Outbox:
    """Rows of events waiting to be published, in the service's own database.

    ``contracts`` lets the relay turn rows written by an earlier process back into models; the
    contract of every event passed to ``add`` is learnt as well.
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
            # Only pending rows are indexed for the relay's scan; sent rows cost it nothing.
            sa.Index(f"ix_{table_name}_pending", "seq", postgresql_where=pending, sqlite_where=pending),
        )
        self.metadata = self.table.metadata

    def create_schema(self, bind: Any) -> None:
        """Create the table and its index if they do not exist (idempotent)."""
        self.table.create(bind, checkfirst=True)

    # -- writing, inside the caller's transaction ------------------------------------------------

    def add(
        self,
        connection: Connection,
        event: BaseModel,
        *,
        event_id: str,
        subject: str | None = None,
        time: datetime | None = None,
    ) -> None:
        """Write one event (validated against its contract now, not at publish time)."""
        self.add_many(connection, [OutboxEntry(event, event_id, subject, time)])

    def add_many(self, connection: Connection, entries: Iterable[OutboxEntry], *, now: datetime | None = None) -> int:
        """Write events in one statement; an ``event_id`` already in the outbox is skipped.

        Skipping makes a re-run of the same work (a job repeated after a crash) harmless.
        Returns the number of rows written.
        """
        moment = now or datetime.now(UTC)
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

        On PostgreSQL, ``FOR UPDATE SKIP LOCKED`` lets several relays claim disjoint rows at
        once; SQLite serializes writers anyway. A claim is a lease, not a lock held during the
        publish, so a relay that dies mid-publish delays its rows by ``lease`` and no more.
        """
        import sqlalchemy as sa

        moment = now or datetime.now(UTC)
        t = self.table
        pending = (
            sa.select(t.c.seq)
            .where(t.c.sent_at.is_(None), t.c.available_at <= moment)
            .order_by(t.c.seq)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        statement = (
            t.update()
            .where(t.c.seq.in_(pending.scalar_subquery()))
            .values(available_at=moment + lease, attempts=t.c.attempts + 1)
            .returning(t.c.seq, t.c.event_id, t.c.event_type, t.c.subject, t.c.event_time, t.c.data, t.c.attempts)
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
