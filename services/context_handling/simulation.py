"""A simulated chat back end: a plausible stream of ended conversations among a few hundred users.

People belong to circles (family, friends, a team) and talk mostly inside them, most often with
a few favourite people; some conversations cross circles, some are group chats, a few have no
messages at all. The stream covers the last ``days`` days in time order, except that a few
events arrive late (out of order) and a few are sent twice with the same event id, as a back end
that retries a publish does. Everything follows from ``seed``.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from eventbus_contracts import ConversationEndedV1

__all__ = ["SimulatedConversation", "simulate"]

_ID_NAMESPACE = uuid.UUID("0b7d3c55-3f0e-4b59-8a1d-6a61b8c2e0f4")


@dataclass(frozen=True, slots=True)
class SimulatedConversation:
    """One publish: the event and the CloudEvents id the back end gives it."""

    event_id: str
    event: ConversationEndedV1
    duplicate: bool = False


def _circles(users: list[str], rng: random.Random) -> list[list[str]]:
    shuffled = users[:]
    rng.shuffle(shuffled)
    circles: list[list[str]] = []
    while shuffled:
        size = rng.randint(6, 14)
        circles.append(shuffled[:size])
        shuffled = shuffled[size:]
    # a second, smaller circle for some people (work, sport) links the first ones together
    for _ in range(len(circles) // 2):
        circles.append(rng.sample(users, rng.randint(4, 8)))
    return circles


def _conversation(
    n: int, people: list[str], ended: datetime, rng: random.Random, *, quiet: bool
) -> ConversationEndedV1:
    minutes = min(180.0, rng.lognormvariate(2.6, 0.8))
    started = ended - timedelta(minutes=minutes)
    per_minute = rng.uniform(0.3, 1.5)
    messages = {} if quiet else {p: max(0, int(rng.gauss(minutes * per_minute / len(people), 3))) for p in people}
    messages = {p: m for p, m in messages.items() if m > 0}
    return ConversationEndedV1(
        conversation_id=f"conv_{n:06d}",
        participants=people,
        started_at=started,
        ended_at=ended,
        message_count=sum(messages.values()),
        messages_by_participant=messages,
        ended_reason=rng.choice(["completed", "completed", "completed", "participant_left", "timed_out"]),
    )


def simulate(
    *,
    users: int = 300,
    conversations: int = 3000,
    days: int = 45,
    seed: int = 7,
    now: datetime | None = None,
    late_share: float = 0.03,
    duplicate_share: float = 0.01,
    prefix: str = "u",
) -> list[SimulatedConversation]:
    """The stream in publish order: ``conversations`` distinct ones plus the duplicates."""
    rng = random.Random(seed)
    end = (now or datetime.now(UTC)).replace(microsecond=0)
    people = [f"{prefix}_{k:04d}" for k in range(1, users + 1)]
    circles = _circles(people, rng)
    # In each circle a few pairs are close: they get most of the one-to-one conversations.
    favourites = {id(c): [tuple(rng.sample(c, 2)) for _ in range(max(2, len(c) // 2))] for c in circles}
    moments = sorted(end - timedelta(seconds=rng.uniform(0, days * 86_400)) for _ in range(conversations))
    stream: list[SimulatedConversation] = []
    for n, ended in enumerate(moments):
        kind = rng.random()
        circle = rng.choice(circles)
        if kind < 0.55:
            group = list(rng.choice(favourites[id(circle)]))
        elif kind < 0.75:
            group = rng.sample(circle, 2)
        elif kind < 0.87:
            group = rng.sample(people, 2)
        else:
            group = rng.sample(circle, min(len(circle), rng.randint(3, 6)))
        event = _conversation(n, group, ended, rng, quiet=rng.random() < 0.04)
        stream.append(SimulatedConversation(str(uuid.uuid5(_ID_NAMESPACE, f"{seed}:{event.conversation_id}")), event))
    for index in range(len(stream)):  # a few arrive late
        if rng.random() < late_share:
            target = min(len(stream) - 1, index + rng.randint(5, 200))
            stream[index], stream[target] = stream[target], stream[index]
    for original in rng.sample(stream, int(conversations * duplicate_share)):  # and a few twice
        position = rng.randint(0, len(stream))
        stream.insert(position, SimulatedConversation(original.event_id, original.event, duplicate=True))
    return stream
