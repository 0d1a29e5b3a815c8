"""Relationship scores, decay and friendship status (DESIGN section 6), with no I/O.

For every unordered pair (a, b) of a conversation's participants, at t = ended_at:

    duration_min = min(120, minutes between started_at and ended_at)
    r            = min(m_a, m_b) / max(m_a, m_b)          (0 when both are 0)
    points       = min(20, 2·log2(1 + m_a + m_b) + duration_min / 12) · (0.5 + 0.5·r)

A pair keeps (S, T_ref): its half-life-decayed strength S as of T_ref, the latest ended_at seen.
Adding points p at time t:

    t >= T_ref:  S ← S·0.5^((t − T_ref)/30 days) + p,  T_ref ← t
    t <  T_ref:  S ← S + p·0.5^((T_ref − t)/30 days)

Both branches compute Σ p_i·0.5^((T − t_i)/30 days) for T = max t_i, so the result does not
depend on the order the conversations arrive in. ``score = min(100, S)`` as of T_ref; the status
is stranger below 10, acquaintance below 40, friend below 75, close_friend otherwise.

Every time is event time (ended_at, a recompute's midnight), never the wall clock, so replaying a
stream gives the same result.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import combinations

__all__ = [
    "HALF_LIFE",
    "SCORE_CAP",
    "InvalidConversation",
    "PairContribution",
    "PairState",
    "Status",
    "conversation_contributions",
    "decay_factor",
    "pair_key",
    "points",
    "score_of",
    "status_of",
]

HALF_LIFE = timedelta(days=30)
SCORE_CAP = 100.0
MAX_DURATION_MINUTES = 120.0
MAX_POINTS = 20.0


class Status(StrEnum):
    """Friendship tiers, lowest first (the values are the contract's FriendshipStatus)."""

    stranger = "stranger"
    acquaintance = "acquaintance"
    friend = "friend"
    close_friend = "close_friend"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def is_friend(self) -> bool:
        """Friend or close friend: the pairs candidate ranking walks through."""
        return self in (Status.friend, Status.close_friend)


_RANK = {status: n for n, status in enumerate(Status)}
_THRESHOLDS = ((10.0, Status.stranger), (40.0, Status.acquaintance), (75.0, Status.friend))


class InvalidConversation(ValueError):
    """A conversation whose data is inconsistent, so it cannot be scored (it gets parked)."""

    def __init__(self, conversation_id: str, reason: str) -> None:
        super().__init__(f"conversation {conversation_id}: {reason}")
        self.conversation_id = conversation_id
        self.reason = reason


def status_of(score: float) -> Status:
    for bound, status in _THRESHOLDS:
        if score < bound:
            return status
    return Status.close_friend


def score_of(strength: float) -> float:
    return min(SCORE_CAP, strength)


def decay_factor(elapsed: timedelta) -> float:
    """0.5^(elapsed / 30 days): how much of a strength is left after ``elapsed``."""
    return 0.5 ** (elapsed / HALF_LIFE)


def points(messages_a: int, messages_b: int, duration: timedelta) -> float:
    """What one conversation earns one pair whose members sent ``messages_a`` and ``messages_b``."""
    if messages_a < 0 or messages_b < 0:
        raise ValueError("message counts cannot be negative")
    duration_min = min(MAX_DURATION_MINUTES, duration.total_seconds() / 60.0)
    high = max(messages_a, messages_b)
    balance = min(messages_a, messages_b) / high if high else 0.0
    raw = 2.0 * math.log2(1 + messages_a + messages_b) + duration_min / 12.0
    return min(MAX_POINTS, raw) * (0.5 + 0.5 * balance)


def pair_key(a: str, b: str) -> tuple[str, str]:
    """The unordered pair as (smaller id, larger id), the form it is stored and published in."""
    if a == b:
        raise ValueError(f"a pair needs two different users, got {a!r} twice")
    return (a, b) if a < b else (b, a)


@dataclass(frozen=True, slots=True)
class PairState:
    """A pair's decayed strength S as of T_ref, and the status last stored for it.

    ``status`` is not always ``status_of(score)``: the daily recompute lowers it for pairs that
    decayed into a lower tier while S and T_ref stay put.
    """

    strength: float = 0.0
    t_ref: datetime | None = None
    status: Status = Status.stranger

    @property
    def score(self) -> float:
        """min(100, S) as of T_ref."""
        return score_of(self.strength)

    def add(self, earned: float, at: datetime) -> PairState:
        """The state after adding ``earned`` points at event time ``at`` (status follows the score)."""
        if self.t_ref is None:
            strength, t_ref = earned, at
        elif at >= self.t_ref:
            strength, t_ref = self.strength * decay_factor(at - self.t_ref) + earned, at
        else:
            strength, t_ref = self.strength + earned * decay_factor(self.t_ref - at), self.t_ref
        return PairState(strength, t_ref, status_of(score_of(strength)))

    def score_at(self, moment: datetime) -> float:
        """min(100, S·0.5^((moment − T_ref)/30 days)); never more than the score at T_ref."""
        if self.t_ref is None:
            return 0.0
        if moment <= self.t_ref:
            return self.score
        return score_of(self.strength * decay_factor(moment - self.t_ref))

    def decayed_status(self, moment: datetime) -> Status | None:
        """The lower status this pair has decayed into by ``moment``, or None if it has not."""
        status = status_of(self.score_at(moment))
        return status if status.rank < self.status.rank else None


@dataclass(frozen=True, slots=True)
class PairContribution:
    """Points one conversation earns one pair, at its ended_at."""

    pair: tuple[str, str]
    points: float
    at: datetime


def conversation_contributions(
    conversation_id: str,
    participants: Sequence[str],
    started_at: datetime,
    ended_at: datetime,
    messages_by_participant: Mapping[str, int],
) -> list[PairContribution]:
    """One contribution per unordered pair of participants (n participants: n·(n−1)/2 pairs).

    Participants missing from ``messages_by_participant`` sent nothing. Raises
    ``InvalidConversation`` for data that cannot be scored: an end before the start, a
    repeated participant, or message counts for someone who did not take part.
    """
    if ended_at < started_at:
        raise InvalidConversation(conversation_id, f"ended_at {ended_at} is before started_at {started_at}")
    if len(set(participants)) != len(participants):
        raise InvalidConversation(conversation_id, "a participant is listed twice")
    strangers = set(messages_by_participant) - set(participants)
    if strangers:
        raise InvalidConversation(conversation_id, f"messages counted for non-participants {sorted(strangers)}")
    duration = ended_at - started_at
    return [
        PairContribution(
            pair_key(a, b),
            points(messages_by_participant.get(a, 0), messages_by_participant.get(b, 0), duration),
            ended_at,
        )
        for a, b in _pairs(participants)
    ]


def _pairs(participants: Sequence[str]) -> Iterator[tuple[str, str]]:
    return combinations(participants, 2)
