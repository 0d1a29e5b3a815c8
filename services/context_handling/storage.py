"""The service's tables and the queries on them (SQLAlchemy Core; SQLite or PostgreSQL).

    context_pairs          one row per pair ever seen: S, T_ref, score, status, counts
    context_schema         the schema version this database is at
    eventbus_inbox         processed conversation event ids (SDK ``Inbox``)
    eventbus_outbox        derived events waiting for the relay (SDK ``Outbox``)
    eventbus_ticks         scheduler ticks running or done (SDK ``SqlTickLedger``)

Every query takes the caller's connection, so a batch's reads and writes share its transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from eventbus import (
    ConfigurationError,
    Inbox,
    Outbox,
    SqlTickLedger,
    UtcDateTime,
    bulk_insert,
    bulk_update,
    column_in,
    keys_in,
)
from eventbus_contracts import REGISTRY

from .scoring import PairState, Status

__all__ = ["SCHEMA_VERSION", "PairRow", "Storage"]

SCHEMA_VERSION = 1
CHUNK = 5000  # keys per statement: well inside SQLite's 32766 parameters
FRIEND_STATUSES = (Status.friend.value, Status.close_friend.value)
# Steps from version N to N+1, run in order on start; add one with every schema change.
MIGRATIONS: dict[int, Sequence[str]] = {}
_MIGRATION_LOCK = 0x636F6E74  # pg_advisory_xact_lock key: replicas starting together migrate one at a time


@dataclass(frozen=True, slots=True)
class PairRow:
    """A stored pair, for reports and tests."""

    user_a: str
    user_b: str
    strength: float
    t_ref: datetime | None
    score: float
    status: Status
    conversations: int

    @property
    def state(self) -> PairState:
        return PairState(self.strength, self.t_ref, self.status)


class Storage:
    """Tables and queries; one instance per engine."""

    def __init__(self, engine: Engine, *, service: str) -> None:
        self.engine = engine
        self.metadata = sa.MetaData()
        self.pairs = sa.Table(
            "context_pairs",
            self.metadata,
            sa.Column("user_a", sa.String(64), primary_key=True),
            sa.Column("user_b", sa.String(64), primary_key=True),
            sa.Column("strength", sa.Double, nullable=False),
            sa.Column("t_ref", UtcDateTime),
            sa.Column("score", sa.Double, nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("conversations", sa.Integer, nullable=False),
            sa.Column("updated_at", UtcDateTime, nullable=False),
        )
        friends_only = self.pairs.c.status.in_(FRIEND_STATUSES)
        for column in ("user_a", "user_b"):
            sa.Index(
                f"ix_context_pairs_friends_{column}",
                self.pairs.c[column],
                postgresql_where=friends_only,
                sqlite_where=friends_only,
            )
        sa.Index("ix_context_pairs_user_b", self.pairs.c.user_b)
        self.schema = sa.Table("context_schema", self.metadata, sa.Column("version", sa.Integer, nullable=False))
        self.inbox = Inbox(service, metadata=self.metadata)
        self.ticks = SqlTickLedger(engine, metadata=self.metadata)
        self.outbox = Outbox(REGISTRY, metadata=self.metadata)

    # -- schema ----------------------------------------------------------------------------------

    def migrate(self) -> int:
        """Create missing tables and bring the schema to ``SCHEMA_VERSION``; returns the version."""
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            self.metadata.create_all(connection, checkfirst=True)
            self.outbox.upgrade_schema(connection)  # ordering columns for an outbox made by an older SDK
            found = connection.execute(sa.select(self.schema.c.version)).scalar()
            if found is None:
                connection.execute(self.schema.insert().values(version=SCHEMA_VERSION))
                return SCHEMA_VERSION
            if found > SCHEMA_VERSION:
                raise ConfigurationError(
                    f"the database schema is at version {found}, newer than this service knows ({SCHEMA_VERSION}): "
                    "upgrade the service"
                )
            for version in range(found, SCHEMA_VERSION):
                for statement in MIGRATIONS.get(version, ()):
                    connection.execute(sa.text(statement))
            connection.execute(self.schema.update().values(version=SCHEMA_VERSION))
            return SCHEMA_VERSION

    # -- the hot path ----------------------------------------------------------------------------

    def lock_pairs(
        self, connection: Connection, keys: Sequence[tuple[str, str]], now: datetime
    ) -> dict[tuple[str, str], tuple[PairState, int]]:
        """The state and conversation count of each pair, locked for this transaction.

        Missing pairs are inserted first (a new pair starts at S = 0), so that two replicas
        meeting a new pair at once serialize on its row; keys are sorted so concurrent batches
        take their locks in one order.
        """
        if not keys:
            return {}
        ordered = sorted(set(keys))
        p = self.pairs
        new_pair = {
            "strength": 0.0,
            "t_ref": None,
            "score": 0.0,
            "status": Status.stranger.value,
            "conversations": 0,
            "updated_at": now,
        }
        placeholders = [{"user_a": a, "user_b": b} for a, b in ordered]
        bulk_insert(connection, p, placeholders, returning="user_a", same=new_pair)
        found: dict[tuple[str, str], tuple[PairState, int]] = {}
        for chunk in _chunks(ordered, CHUNK):  # SQLite caps the number of parameters of a statement
            query = (
                sa.select(p.c.user_a, p.c.user_b, p.c.strength, p.c.t_ref, p.c.status, p.c.conversations)
                .where(keys_in(connection, p, ["user_a", "user_b"], chunk))
                .order_by(p.c.user_a, p.c.user_b)
                .with_for_update()
            )
            for a, b, strength, t_ref, status, conversations in connection.execute(query):
                found[(a, b)] = (PairState(strength, t_ref, Status(status)), conversations)
        return found

    def save_pairs(
        self, connection: Connection, states: Mapping[tuple[str, str], tuple[PairState, int]], now: datetime
    ) -> None:
        """Write the new state of pairs already locked by ``lock_pairs``.

        Hundreds of rows travel in one statement (``bulk_update``), not one UPDATE each.
        """
        if not states:
            return
        p = self.pairs
        rows = [
            {
                "user_a": a,
                "user_b": b,
                "strength": state.strength,
                "t_ref": state.t_ref,
                "score": state.score,
                "status": state.status.value,
                "conversations": conversations,
            }
            for (a, b), (state, conversations) in sorted(states.items())
        ]
        bulk_update(connection, p, ["user_a", "user_b"], rows, same={"updated_at": now})

    def friend_edges_around(self, connection: Connection, users: Iterable[str]) -> list[tuple[str, str, float]]:
        """Friend-or-better pairs within two hops of ``users``: enough to rank their candidates."""
        first = self._friend_edges(connection, set(users))
        reached = {u for a, b, _ in first for u in (a, b)}
        second = self._friend_edges(connection, reached - set(users))
        return list({(a, b): (a, b, s) for a, b, s in (*first, *second)}.values())

    def _friend_edges(self, connection: Connection, users: set[str]) -> list[tuple[str, str, float]]:
        if not users:
            return []
        p = self.pairs
        edges: list[tuple[str, str, float]] = []
        for chunk in _chunks(sorted(users), CHUNK):
            query = sa.select(p.c.user_a, p.c.user_b, p.c.score).where(
                p.c.status.in_(FRIEND_STATUSES),
                sa.or_(column_in(connection, p.c.user_a, chunk), column_in(connection, p.c.user_b, chunk)),
            )
            edges.extend((a, b, s) for a, b, s in connection.execute(query))
        return edges

    # -- reads for jobs, metrics, the demo and tests ------------------------------------------------

    def counts_by_status(self, connection: Connection) -> dict[Status, int]:
        p = self.pairs
        rows = connection.execute(sa.select(p.c.status, sa.func.count()).group_by(p.c.status))
        counts = dict.fromkeys(Status, 0)
        counts.update({Status(status): n for status, n in rows})
        return counts

    def all_pairs(self, connection: Connection) -> list[PairRow]:
        p = self.pairs
        query = sa.select(
            p.c.user_a, p.c.user_b, p.c.strength, p.c.t_ref, p.c.score, p.c.status, p.c.conversations
        ).order_by(p.c.user_a, p.c.user_b)
        return [PairRow(a, b, s, t, sc, Status(st), n) for a, b, s, t, sc, st, n in connection.execute(query)]

    def pairs_decayable(
        self, connection: Connection, moment: datetime, *, after: tuple[str, str] | None, limit: int
    ) -> list[PairRow]:
        """Pairs above stranger with T_ref before ``moment``, in key order after ``after``, locked."""
        p = self.pairs
        query = (
            sa.select(p.c.user_a, p.c.user_b, p.c.strength, p.c.t_ref, p.c.score, p.c.status, p.c.conversations)
            .where(p.c.status != Status.stranger.value, p.c.t_ref < moment)
            .order_by(p.c.user_a, p.c.user_b)
            .limit(limit)
            .with_for_update()
        )
        if after is not None:
            query = query.where(sa.tuple_(p.c.user_a, p.c.user_b) > sa.tuple_(*after))
        return [PairRow(a, b, s, t, sc, Status(st), n) for a, b, s, t, sc, st, n in connection.execute(query)]

    def decayable_keys(
        self, connection: Connection, moment: datetime, *, after: tuple[str, str] | None, limit: int
    ) -> list[tuple[str, str]]:
        """The keys ``pairs_decayable`` would return, without locking: a shard of the decay recompute
        walks these and locks only its own pairs (``lock_decayable``)."""
        p = self.pairs
        query = (
            sa.select(p.c.user_a, p.c.user_b)
            .where(p.c.status != Status.stranger.value, p.c.t_ref < moment)
            .order_by(p.c.user_a, p.c.user_b)
            .limit(limit)
        )
        if after is not None:
            query = query.where(sa.tuple_(p.c.user_a, p.c.user_b) > sa.tuple_(*after))
        return [(a, b) for a, b in connection.execute(query)]

    def lock_decayable(
        self, connection: Connection, moment: datetime, keys: Sequence[tuple[str, str]]
    ) -> list[PairRow]:
        """Those of ``keys`` that are still above stranger with T_ref before ``moment``, locked, in key order.

        Checked again under the lock: a conversation may have changed a pair since the unlocked walk.
        """
        if not keys:
            return []
        p = self.pairs
        found: list[PairRow] = []
        for chunk in _chunks(sorted(keys), CHUNK):
            query = (
                sa.select(p.c.user_a, p.c.user_b, p.c.strength, p.c.t_ref, p.c.score, p.c.status, p.c.conversations)
                .where(
                    keys_in(connection, p, ["user_a", "user_b"], chunk),
                    p.c.status != Status.stranger.value,
                    p.c.t_ref < moment,
                )
                .order_by(p.c.user_a, p.c.user_b)
                .with_for_update()
            )
            found.extend(PairRow(a, b, s, t, sc, Status(st), n) for a, b, s, t, sc, st, n in connection.execute(query))
        return found

    def users_changed_since(self, connection: Connection, since: datetime) -> list[str]:
        """Users with a pair written at or after ``since`` (wall clock), sorted."""
        p = self.pairs
        query = sa.union(
            sa.select(p.c.user_a.label("user_id")).where(p.c.updated_at >= since),
            sa.select(p.c.user_b.label("user_id")).where(p.c.updated_at >= since),
        )
        return sorted(connection.execute(query).scalars())

    def set_statuses(self, connection: Connection, changes: Mapping[tuple[str, str], Status], now: datetime) -> None:
        rows = [
            {"user_a": a, "user_b": b, "status": status.value, "updated_at": now}
            for (a, b), status in sorted(changes.items())
        ]
        bulk_update(connection, self.pairs, ["user_a", "user_b"], rows)

    def last_change_by_user(self, connection: Connection) -> dict[str, datetime]:
        """When each user's pairs last changed (wall clock), for finding stale candidate caches."""
        p = self.pairs
        latest: dict[str, datetime] = {}
        for column in (p.c.user_a, p.c.user_b):
            for user, moment in connection.execute(sa.select(column, sa.func.max(p.c.updated_at)).group_by(column)):
                moment = UtcDateTime().process_result_value(moment, connection.dialect)
                if user not in latest or moment > latest[user]:
                    latest[user] = moment
        return latest


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
