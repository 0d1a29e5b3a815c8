"""The daily decay recompute, over all pairs or over one shard of them.

As of midnight M, every pair above stranger with T_ref < M gets the status implied by
min(100, S·0.5^((M - T_ref)/30 days)); where that is lower than the stored status, the new status
and a ``context.friendship.status_changed.v1`` (cause ``decay``, changed_at M) are written in one
transaction per chunk. S and T_ref stay, so a second run for the same M changes nothing.

A shard is the pairs whose key hashes to it (``shard_of``: BLAKE2b of ``user_a/user_b``, stable
across processes, languages and runs, unlike Python's ``hash``). Shards are disjoint and cover
every pair, and a pair's outcome depends on that pair alone, so the shards of one midnight can run
side by side, on any replica, in any order, and their reports add up (``DecayReport.__add__``) to
the report of the whole recompute on the same data. That is what lets the scheduler's daily tick
run it as a chord (``decay_chord``). Each shard walks the decayable keys in key order without
locking and locks only its own pairs, so shards running together never wait for each other's rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.engine import Connection

from eventbus import run_transaction, tick_id

from .derived import pair_key, status_changed
from .scoring import Status
from .storage import PairRow, Storage

__all__ = ["DECAY_JOB", "DecayReport", "lower_decayed", "report_from_counts", "shard_of"]

DECAY_JOB = "decay-recompute"


@dataclass(frozen=True, slots=True)
class DecayReport:
    """What one recompute (or one shard of it) did: pairs examined, and pairs lowered to each status."""

    midnight: datetime
    examined: int
    lowered: dict[Status, int] = field(default_factory=lambda: dict.fromkeys(Status, 0))

    def __str__(self) -> str:
        moved = ", ".join(f"{n} to {status.value}" for status, n in self.lowered.items() if n) or "none lowered"
        return f"as of {self.midnight.isoformat()}: {self.examined} pairs examined, {moved}"

    def __add__(self, other: DecayReport) -> DecayReport:
        if other.midnight != self.midnight:
            raise ValueError(f"reports of different midnights: {self.midnight} and {other.midnight}")
        lowered = {status: self.lowered.get(status, 0) + other.lowered.get(status, 0) for status in Status}
        return DecayReport(self.midnight, self.examined + other.examined, lowered)

    @classmethod
    def total(cls, midnight: datetime, parts: Iterable[DecayReport]) -> DecayReport:
        """The sum of ``parts`` (the shards of one midnight); nothing examined when there are none."""
        report = cls(midnight, 0)
        for part in parts:
            report = report + part
        return report


def shard_of(pair: tuple[str, str], of: int) -> int:
    """The shard (0 … of-1) of a pair: a stable hash of its key, the same in every process and run."""
    if of < 1:
        raise ValueError(f"the number of shards must be at least 1, got {of}")
    digest = hashlib.blake2b(pair_key(pair).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % of


def _lower(
    storage: Storage, connection: Connection, rows: list[PairRow], midnight: datetime, cause: str
) -> dict[tuple[str, str], Status]:
    """Store the decayed status of ``rows`` (locked) where it is lower, with their status_changed rows."""
    changes: dict[tuple[str, str], Status] = {}
    lowered_rows = []
    for row in rows:
        lower = row.state.decayed_status(midnight)
        if lower is None:
            continue
        changes[(row.user_a, row.user_b)] = lower
        lowered_rows.append((row, lower))
    versions = storage.outbox.next_sequences(connection, [pair_key(key) for key in changes])
    entries = [
        status_changed(
            (row.user_a, row.user_b),
            row.status,
            lower,
            row.state.score_at(midnight),
            midnight,
            cause_id=cause,
            conversation_id=None,
            version=version,
        )
        for (row, lower), version in zip(lowered_rows, versions, strict=True)
    ]
    now = datetime.now(UTC)
    storage.set_statuses(connection, changes, now)
    storage.outbox.add_many(connection, entries, now=now)
    return changes


def lower_decayed(
    storage: Storage, midnight: datetime, *, shard: int = 0, of: int = 1, chunk: int = 1000
) -> tuple[DecayReport, set[str]]:
    """Lower the pairs of shard ``shard`` of ``of`` that decayed by ``midnight``; (report, users touched).

    One transaction per ``chunk`` keys walked. With ``of == 1`` every pair is this shard's, and a
    chunk is read and locked in one query.
    """
    if not 0 <= shard < of:
        raise ValueError(f"shard {shard} is not one of 0 … {of - 1}")
    cause = tick_id(DECAY_JOB, midnight)
    examined = 0
    lowered = dict.fromkeys(Status, 0)
    touched: set[str] = set()
    after: tuple[str, str] | None = None
    while True:

        def one_chunk(
            connection: Connection, after: tuple[str, str] | None = after
        ) -> tuple[tuple[str, str] | None, int, int, dict[tuple[str, str], Status]]:
            if of == 1:
                rows = storage.pairs_decayable(connection, midnight, after=after, limit=chunk)
                walked = len(rows)
                last = (rows[-1].user_a, rows[-1].user_b) if rows else None
            else:
                keys = storage.decayable_keys(connection, midnight, after=after, limit=chunk)
                walked = len(keys)
                last = keys[-1] if keys else None
                rows = storage.lock_decayable(connection, midnight, [k for k in keys if shard_of(k, of) == shard])
            return last, walked, len(rows), _lower(storage, connection, rows, midnight, cause)

        last, walked, mine, changes = run_transaction(storage.engine, one_chunk)
        examined += mine
        for (a, b), status in changes.items():
            lowered[status] += 1
            touched.update((a, b))
        if walked < chunk or last is None:
            break
        after = last
    return DecayReport(midnight, examined, lowered), touched


def report_from_counts(midnight: datetime, examined: int, lowered: Mapping[str, int]) -> DecayReport:
    """A report from its wire form (status values as keys), e.g. a shard's result in a chord."""
    counts = dict.fromkeys(Status, 0)
    counts.update({Status(status): n for status, n in lowered.items()})
    return DecayReport(midnight, examined, counts)
