"""Apply a batch of conversations in ONE transaction: dedup, pairs, derived events.

    claim the event ids in the inbox  ─┐
    lock and update the pairs          ├─ one transaction: all of it commits, or none of it
    rank the participants' candidates  │
    write derived events to the outbox ─┘
    then (after the commit) refresh the candidate cache, overlapping the next batch

A batch is the deliveries that arrived while the previous batch was being written (see
``batcher``), so one transaction's cost is shared by many events without waiting for a batch to
fill. The messages are acknowledged only after the commit; a crash before it loses nothing (the
broker redelivers), a crash after it duplicates nothing (the inbox says "done").

Within a batch, conversations apply in arrival order, one after the other, exactly as if each had
its own transaction: status changes compare with the state the previous conversation left.
Candidates are ranked once per participant on the state at the end of the batch, which is the
state after that participant's conversation and possibly a few later ones.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy.engine import Connection

from eventbus import OutboxEntry, run_transaction
from eventbus_contracts import ConversationEndedV1

from .cache import CachedCandidates, CandidateCache
from .candidates import RankedCandidate, friend_graph, rank_candidates
from .derived import candidates_updated, pair_key, status_changed
from .scoring import InvalidConversation, PairContribution, PairState, conversation_contributions
from .storage import Storage

__all__ = ["BatchResult", "ConversationProcessor", "Incoming", "Outcome"]

log = logging.getLogger("context_handling")


class Outcome(StrEnum):
    applied = "applied"
    duplicate = "duplicate"
    rejected = "rejected"


@dataclass(frozen=True, slots=True)
class Incoming:
    """One delivered conversation and its CloudEvents id (the dedup key)."""

    event_id: str
    conversation: ConversationEndedV1


@dataclass(slots=True)
class BatchResult:
    outcomes: list[Outcome] = field(default_factory=list)
    errors: dict[int, InvalidConversation] = field(default_factory=dict)
    status_changes: int = 0
    derived_events: int = 0
    rankings: dict[str, tuple[list[RankedCandidate], datetime]] = field(default_factory=dict)


def contributions_of(conversation: ConversationEndedV1) -> list[PairContribution]:
    return conversation_contributions(
        conversation.conversation_id,
        conversation.participants,
        conversation.started_at,
        conversation.ended_at,
        conversation.messages_by_participant,
    )


class ConversationProcessor:
    """The blocking write path; the batcher runs it in a worker thread."""

    def __init__(self, storage: Storage, cache: CandidateCache) -> None:
        self.storage = storage
        self.cache = cache

    def process(self, batch: Sequence[Incoming]) -> BatchResult:
        """Apply ``batch`` in one transaction, then refresh the candidate cache."""
        result = self.apply(batch)
        self.refresh_cache(result)
        return result

    def apply(self, batch: Sequence[Incoming]) -> BatchResult:
        """Apply ``batch`` in one transaction; the cache is left to ``refresh_cache(result)``.

        The service's batcher calls the two apart, so that one batch's cache write overlaps the
        next batch's transaction and the handlers (hence the acks) do not wait for Redis.
        """
        result = BatchResult(outcomes=[Outcome.rejected] * len(batch))
        scored: list[tuple[int, Incoming, list[PairContribution]]] = []
        for index, item in enumerate(batch):
            try:
                scored.append((index, item, contributions_of(item.conversation)))
            except InvalidConversation as exc:
                result.errors[index] = exc
        if scored:
            run_transaction(self.storage.engine, lambda connection: self._apply(connection, scored, result))
        return result

    def _apply(
        self,
        connection: Connection,
        scored: list[tuple[int, Incoming, list[PairContribution]]],
        result: BatchResult,
    ) -> None:
        # A retried transaction starts again from a clean result.
        result.status_changes = result.derived_events = 0
        result.rankings = {}
        now = datetime.now(UTC)
        claimed = self.storage.inbox.claim_many(connection, [item.event_id for _, item, _ in scored], now=now)
        applying: list[tuple[Incoming, list[PairContribution]]] = []
        for index, item, contributions in scored:
            if item.event_id in claimed:
                claimed.discard(item.event_id)  # a second copy within the batch is a duplicate
                applying.append((item, contributions))
                result.outcomes[index] = Outcome.applied
            else:
                result.outcomes[index] = Outcome.duplicate
        if not applying:
            return
        keys = [c.pair for _, contributions in applying for c in contributions]
        states = self.storage.lock_pairs(connection, keys, now)
        changes: list[tuple[Incoming, tuple[str, str], PairState, PairState]] = []
        for item, contributions in applying:
            for contribution in contributions:
                before, count = states[contribution.pair]
                after = before.add(contribution.points, contribution.at)
                states[contribution.pair] = (after, count + 1)
                if after.status != before.status:
                    changes.append((item, contribution.pair, before, after))
        self.storage.save_pairs(connection, states, now)
        result.status_changes = len(changes)

        participants = list(dict.fromkeys(u for item, _ in applying for u in item.conversation.participants))
        graph = friend_graph(self.storage.friend_edges_around(connection, participants))
        rankings = {user: rank_candidates(user, graph) for user in participants}
        updates = [(item, user) for item, _ in applying for user in item.conversation.participants]
        # Each event's version: its pair's or user's next sequence, in the order the events are written.
        versions = iter(
            self.storage.outbox.next_sequences(
                connection, [pair_key(pair) for _, pair, _, _ in changes] + [user for _, user in updates]
            )
        )
        entries: list[OutboxEntry] = [
            self._status_change(item, pair, before, after, next(versions)) for item, pair, before, after in changes
        ]
        for item, user in updates:
            conversation = item.conversation
            entries.append(
                candidates_updated(
                    user,
                    rankings[user],
                    conversation.ended_at,
                    cause_id=item.event_id,
                    conversation_id=conversation.conversation_id,
                    version=next(versions),
                )
            )
            result.rankings[user] = (rankings[user], conversation.ended_at)
        self.storage.outbox.add_many(connection, entries, now=now)
        result.derived_events = len(entries)

    @staticmethod
    def _status_change(
        item: Incoming, pair: tuple[str, str], before: PairState, after: PairState, version: int
    ) -> OutboxEntry:
        return status_changed(
            pair,
            before.status,
            after.status,
            after.score,
            item.conversation.ended_at,
            cause_id=item.event_id,
            conversation_id=item.conversation.conversation_id,
            version=version,
        )

    def refresh_cache(self, result: BatchResult) -> None:
        """Best effort after the commit: a cache outage must not undo or repeat committed work."""
        if not result.rankings:
            return
        now = datetime.now(UTC)
        entries = {
            user: CachedCandidates(user, ranked, computed_at, now)
            for user, (ranked, computed_at) in result.rankings.items()
        }
        try:
            self.cache.put_many(entries)
        except Exception as exc:  # the fallback job rebuilds what this misses
            log.warning("candidate cache not refreshed for %d user(s): %s: %s", len(entries), type(exc).__name__, exc)
