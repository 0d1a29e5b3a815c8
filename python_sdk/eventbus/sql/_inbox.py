"""The inbox: which event ids a consumer has already applied, in the consumer's own database.

RabbitMQ delivers at least once: a consumer that dies after committing but before acking sees the
same event again. Recording the event id in the SAME transaction as the event's effects makes the
effects happen exactly once: the second delivery finds its id taken and changes nothing.

    with engine.begin() as connection:
        if inbox.claim(connection, ctx.id):          # False: applied before, just ack
            apply_effects(connection, event)         # rolled back together with the claim

On PostgreSQL a concurrent duplicate (two replicas got the same event) blocks on the first one's
uncommitted row and then sees the conflict, so only one of them applies it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ._bulk import bulk_insert
from ._sql import UtcDateTime, define_table, require_sqlalchemy

if TYPE_CHECKING:
    from sqlalchemy import MetaData
    from sqlalchemy.engine import Connection, Engine

__all__ = ["Inbox"]

MAX_ID_LENGTH = 255


class Inbox:
    """Processed event ids of one consumer (a service, a job runner), keyed ``(consumer, event_id)``.

    Several consumers can share the table; each sees only its own ids. Pass the service's
    ``metadata`` so one ``create_all`` creates the inbox with the service's own tables.
    """

    def __init__(self, consumer: str, *, table_name: str = "eventbus_inbox", metadata: MetaData | None = None):
        require_sqlalchemy()
        import sqlalchemy as sa

        self.consumer = consumer
        self.table = define_table(
            metadata,
            table_name,
            sa.Column("consumer", sa.String(200), primary_key=True),
            sa.Column("event_id", sa.String(MAX_ID_LENGTH), primary_key=True),
            sa.Column("processed_at", UtcDateTime, nullable=False),
            sa.Index(f"ix_{table_name}_processed_at", "processed_at"),
        )
        self.metadata = self.table.metadata

    def create_schema(self, bind: Engine | Connection) -> None:
        """Create the table if it does not exist (idempotent)."""
        self.table.create(bind, checkfirst=True)

    def claim(self, connection: Connection, event_id: str, *, now: datetime | None = None) -> bool:
        """Record ``event_id``; True the first time, False when it was processed before."""
        return bool(self.claim_many(connection, [event_id], now=now))

    def claim_many(self, connection: Connection, event_ids: Iterable[str], *, now: datetime | None = None) -> set[str]:
        """Record every id not yet processed and return those: the ones the caller must apply now.

        An id repeated within ``event_ids`` is claimed once.
        """
        moment = now or datetime.now(UTC)
        unique = list(dict.fromkeys(event_ids))
        for event_id in unique:
            if not event_id or len(event_id) > MAX_ID_LENGTH:
                raise ValueError(f"event id must be 1 to {MAX_ID_LENGTH} characters: {event_id!r}")
        if not unique:
            return set()
        rows = [{"event_id": e} for e in unique]
        same = {"consumer": self.consumer, "processed_at": moment}
        return set(bulk_insert(connection, self.table, rows, returning="event_id", same=same))

    def seen(self, connection: Connection, event_id: str) -> bool:
        """True when ``event_id`` was processed (committed) before."""
        import sqlalchemy as sa

        query = sa.select(sa.literal(1)).where(
            self.table.c.consumer == self.consumer, self.table.c.event_id == event_id
        )
        return connection.execute(query).first() is not None

    def count(self, connection: Connection) -> int:
        import sqlalchemy as sa

        query = sa.select(sa.func.count()).select_from(self.table).where(self.table.c.consumer == self.consumer)
        return int(connection.execute(query).scalar_one())

    def purge(self, connection: Connection, older_than: datetime) -> int:
        """Forget ids processed before ``older_than``; returns how many.

        After this, a redelivery of such an old event would be applied again: keep ids longer
        than any delivery can be delayed (retries, parked messages waiting for replay).
        """
        statement = self.table.delete().where(
            self.table.c.consumer == self.consumer, self.table.c.processed_at < older_than
        )
        result: Any = connection.execute(statement)
        return int(result.rowcount or 0)
