"""Where replicas agree on which ticks are running or done, so a tick fired twice runs once.

A tick can reach the ticks queue twice: a new leader re-fires the latest tick when it takes over
(it cannot know whether the old leader got to it), and a leader cut off from the broker may fire
once more before it notices. Before running a tick, a replica *claims* it in the ledger:

    claimed   nobody has it: run it, renewing the claim while it runs, then mark it done
    done      it ran to completion before: acknowledge and skip
    busy      another replica holds a live claim: wait and ask again (if that replica dies,
              its claim stops being renewed and lapses after ``lease``, and this one takes over)

``SqlTickLedger`` keeps the claims in a table every replica shares (SQLite or PostgreSQL);
``MemoryTickLedger`` is for replicas inside one process, e.g. tests.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..sql._sql import UtcDateTime, define_table, insert_ignoring_conflicts, require_sqlalchemy, run_transaction

if TYPE_CHECKING:
    from sqlalchemy import MetaData
    from sqlalchemy.engine import Connection, Engine

__all__ = ["ClaimResult", "MemoryTickLedger", "SqlTickLedger", "TickLedger"]

ClaimResult = Literal["claimed", "done", "busy"]


class TickLedger(Protocol):
    """Blocking calls; the scheduler makes them from a worker thread."""

    def claim(self, tick_id: str, owner: str, lease: timedelta) -> ClaimResult:
        """Take the tick for ``lease`` unless it is done or someone else's live claim."""
        ...

    def renew(self, tick_id: str, owner: str) -> None:
        """Extend the claim of a tick still running (a lapsed claim lets another replica run it)."""
        ...

    def complete(self, tick_id: str, owner: str) -> None:
        """Mark the tick done for good."""
        ...

    def release(self, tick_id: str, owner: str) -> None:
        """Drop the claim of a tick whose job failed, so a re-fired copy may run it again."""
        ...


class MemoryTickLedger:
    """Claims in a dict: correct for replicas inside one process only."""

    def __init__(self) -> None:
        self._ticks: dict[str, tuple[str, str, datetime]] = {}  # id → (state, owner, claimed_at)
        self._lock = threading.Lock()

    def claim(self, tick_id: str, owner: str, lease: timedelta) -> ClaimResult:
        now = datetime.now(UTC)
        with self._lock:
            found = self._ticks.get(tick_id)
            if found is not None:
                if found[0] == "done":
                    return "done"
                if found[2] > now - lease:
                    return "busy"
            self._ticks[tick_id] = ("running", owner, now)
            return "claimed"

    def renew(self, tick_id: str, owner: str) -> None:
        with self._lock:
            found = self._ticks.get(tick_id)
            if found is not None and found[:2] == ("running", owner):
                self._ticks[tick_id] = ("running", owner, datetime.now(UTC))

    def complete(self, tick_id: str, owner: str) -> None:
        with self._lock:
            self._ticks[tick_id] = ("done", owner, datetime.now(UTC))

    def release(self, tick_id: str, owner: str) -> None:
        with self._lock:
            found = self._ticks.get(tick_id)
            if found is not None and found[:2] == ("running", owner):
                del self._ticks[tick_id]


class SqlTickLedger:
    """Claims in table ``eventbus_ticks``; pass the service's ``metadata`` to create it with the rest."""

    def __init__(self, engine: Engine, *, table_name: str = "eventbus_ticks", metadata: MetaData | None = None):
        require_sqlalchemy()
        import sqlalchemy as sa

        self.engine = engine
        self.table = define_table(
            metadata,
            table_name,
            sa.Column("tick_id", sa.String(255), primary_key=True),
            sa.Column("state", sa.String(10), nullable=False),
            sa.Column("owner", sa.String(200), nullable=False),
            sa.Column("claimed_at", UtcDateTime, nullable=False),
            sa.Column("finished_at", UtcDateTime),
        )
        self.metadata = self.table.metadata

    def create_schema(self, bind: Any) -> None:
        self.table.create(bind, checkfirst=True)

    def claim(self, tick_id: str, owner: str, lease: timedelta) -> ClaimResult:
        return run_transaction(self.engine, lambda c: self._claim(c, tick_id, owner, lease))

    def _claim(self, connection: Connection, tick_id: str, owner: str, lease: timedelta) -> ClaimResult:
        import sqlalchemy as sa

        t = self.table
        now = datetime.now(UTC)
        insert = insert_ignoring_conflicts(t, connection.dialect.name).returning(t.c.tick_id)
        if connection.execute(
            insert, [{"tick_id": tick_id, "state": "running", "owner": owner, "claimed_at": now}]
        ).first():
            return "claimed"
        takeover = (
            t.update()
            .where(t.c.tick_id == tick_id, t.c.state == "running", t.c.claimed_at < now - lease)
            .values(owner=owner, claimed_at=now)
            .returning(t.c.tick_id)
        )
        if connection.execute(takeover).first():
            return "claimed"
        state = connection.execute(sa.select(t.c.state).where(t.c.tick_id == tick_id)).scalar()
        return "done" if state == "done" else "busy"

    def _update(self, tick_id: str, owner: str, **values: Any) -> None:
        t = self.table
        statement = (
            t.update().where(t.c.tick_id == tick_id, t.c.owner == owner, t.c.state == "running").values(**values)
        )
        run_transaction(self.engine, lambda c: c.execute(statement))

    def renew(self, tick_id: str, owner: str) -> None:
        self._update(tick_id, owner, claimed_at=datetime.now(UTC))

    def complete(self, tick_id: str, owner: str) -> None:
        self._update(tick_id, owner, state="done", finished_at=datetime.now(UTC))

    def release(self, tick_id: str, owner: str) -> None:
        t = self.table
        statement = t.delete().where(t.c.tick_id == tick_id, t.c.owner == owner, t.c.state == "running")
        run_transaction(self.engine, lambda c: c.execute(statement))

    def state(self, tick_id: str) -> str | None:
        """``running``, ``done`` or None: for tests and operators."""
        import sqlalchemy as sa

        with self.engine.connect() as connection:
            return connection.execute(sa.select(self.table.c.state).where(self.table.c.tick_id == tick_id)).scalar()
