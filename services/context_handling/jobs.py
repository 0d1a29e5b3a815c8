"""The two periodic jobs: the daily decay recompute and the 6-hourly fallback.

Both are idempotent, as the scheduler requires (a tick can run again after a crash mid-job):

- decay recompute as of midnight M: for every pair above stranger with T_ref < M, the status
  implied by min(100, S·0.5^((M - T_ref)/30 days)); where that is lower than the stored status,
  store it and write ``context.friendship.status_changed.v1`` (cause ``decay``, changed_at M)
  to the outbox in the same transaction. S and T_ref stay. A second run for the same M finds
  the stored statuses already lowered and changes nothing; its event ids would be the same anyway.
- fallback: rebuild candidate cache entries that are missing, or older than the user's latest
  pair change (a cache write lost after a commit, a decay that changed friendships), re-drive
  parked conversations whose failure was transient (database or network down), leaving those
  whose data was bad in the dead-letter queue, and delete outbox rows published over a week ago.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from eventbus import (
    BusSettings,
    DeadLetters,
    ParkedMessage,
    consumer_queue_name,
    dead_letter_queue_name,
    run_transaction,
)
from eventbus_contracts import CONVERSATION_ENDED_V1

from .cache import CachedCandidates, CandidateCache
from .candidates import friend_graph, rank_candidates
from .decay import DECAY_JOB, DecayReport, lower_decayed
from .storage import Storage

__all__ = [
    "DECAY_JOB",
    "DecayReport",
    "FallbackReport",
    "decay_recompute",
    "is_transient",
    "purge_published",
    "rebuild_candidate_caches",
]

log = logging.getLogger("context_handling.jobs")

OUTBOX_RETENTION = timedelta(days=7)
FALLBACK_JOB = "fallback"

# Exception types (as the SDK writes them in eventbus-error-type) worth another try later.
TRANSIENT_ERROR_TYPES = frozenset(
    {
        "builtins.ConnectionError",
        "builtins.ConnectionRefusedError",
        "builtins.ConnectionResetError",
        "builtins.TimeoutError",
        "builtins.OSError",
        "sqlalchemy.exc.OperationalError",
        "sqlalchemy.exc.InterfaceError",
        "sqlalchemy.exc.DisconnectionError",
        "sqlalchemy.exc.TimeoutError",
        "redis.exceptions.ConnectionError",
        "redis.exceptions.TimeoutError",
    }
)


@dataclass(frozen=True, slots=True)
class FallbackReport:
    caches_rebuilt: int
    redriven: int
    kept_parked: int
    outbox_purged: int = 0

    def __str__(self) -> str:
        return (
            f"{self.caches_rebuilt} candidate cache entries rebuilt, {self.redriven} parked conversations re-driven, "
            f"{self.kept_parked} left parked, {self.outbox_purged} published outbox rows older than "
            f"{OUTBOX_RETENTION.days} days deleted"
        )


def purge_published(storage: Storage) -> int:
    """Delete outbox rows published more than ``OUTBOX_RETENTION`` ago (kept that long for audits)."""
    cutoff = datetime.now(UTC) - OUTBOX_RETENTION
    return run_transaction(storage.engine, lambda connection: storage.outbox.purge_sent(connection, cutoff))


def decay_recompute(storage: Storage, cache: CandidateCache, midnight: datetime, *, chunk: int = 1000) -> DecayReport:
    """Lower the status of every pair that decayed into a lower tier by ``midnight``, in this process.

    The whole recompute as one walk (``decay.lower_decayed`` with one shard), then the candidate
    caches of the users it touched. The scheduler runs it as a chord of shards instead when the
    service has Redis (``decay_chord``).
    """
    report, touched = lower_decayed(storage, midnight, chunk=chunk)
    if touched:
        rebuild_candidate_caches(storage, cache, sorted(touched))
    log.info("decay recompute %s", report)
    return report


def rebuild_candidate_caches(storage: Storage, cache: CandidateCache, users: list[str], *, chunk: int = 500) -> int:
    """Rank and cache the candidates of ``users`` from the current pairs; returns how many."""
    now = datetime.now(UTC)
    for start in range(0, len(users), chunk):
        part = users[start : start + chunk]
        with storage.engine.connect() as connection:
            graph = friend_graph(storage.friend_edges_around(connection, part))
        cache.put_many({u: CachedCandidates(u, rank_candidates(u, graph), now, now) for u in part})
    return len(users)


def stale_cache_users(storage: Storage, cache: CandidateCache) -> list[str]:
    """Users whose cache entry is missing or older than their latest pair change."""
    with storage.engine.connect() as connection:
        changed = storage.last_change_by_user(connection)
    users = sorted(changed)
    stale: list[str] = []
    for start in range(0, len(users), 1000):
        part = users[start : start + 1000]
        cached = cache.get_many(part)
        stale.extend(u for u in part if u not in cached or cached[u].cached_at < changed[u])
    return stale


def is_transient(parked: ParkedMessage) -> bool:
    """A failure that may not happen again: the database, Redis or the network was unavailable."""
    return parked.error_type in TRANSIENT_ERROR_TYPES


async def redrive_transient(bus: BusSettings) -> tuple[int, int]:
    """Send transiently failed conversations back to the service's queue; (re-driven, kept).

    The SDK's ``DeadLetters.replay`` removes a message from the DLQ only after the broker confirmed
    its copy on the consumer queue, so a crash in the middle loses nothing.
    """
    dlq = dead_letter_queue_name(consumer_queue_name(bus.service, CONVERSATION_ENDED_V1.type))

    def replay() -> tuple[int, int]:
        with DeadLetters(bus) as dead_letters:
            if dead_letters.depth(dlq) is None:
                return 0, 0
            result = dead_letters.replay(dlq, select=is_transient)
        return len(result.replayed), result.scanned - len(result.replayed)

    redriven, kept = await asyncio.to_thread(replay)
    if redriven or kept:
        log.info("fallback: %d parked conversation(s) re-driven, %d left parked", redriven, kept)
    return redriven, kept
