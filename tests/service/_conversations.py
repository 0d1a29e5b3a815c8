"""Building conversations and folding them through the domain core, for the service's tests."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from context_handling.processor import contributions_of
from context_handling.scoring import PairState, Status
from eventbus_contracts import ConversationEndedV1

T0 = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


def conversation(
    number: int,
    participants: Sequence[str],
    ended: datetime,
    *,
    minutes: float = 30,
    messages: dict[str, int] | None = None,
    prefix: str = "conv",
) -> ConversationEndedV1:
    counts = messages if messages is not None else {p: 10 for p in participants}
    return ConversationEndedV1(
        conversation_id=f"{prefix}_{number}",
        participants=list(participants),
        started_at=ended - timedelta(minutes=minutes),
        ended_at=ended,
        message_count=sum(counts.values()),
        messages_by_participant=counts,
    )


def reference_states(conversations: Iterable[ConversationEndedV1]) -> dict[tuple[str, str], PairState]:
    """What the domain core says the pairs are after these conversations (each applied once, in order)."""
    states: dict[tuple[str, str], PairState] = {}
    for event in conversations:
        for c in contributions_of(event):
            states[c.pair] = states.get(c.pair, PairState()).add(c.points, c.at)
    return states


def random_stream(count: int, users: int, *, seed: int, prefix: str, days: int = 40) -> list[ConversationEndedV1]:
    """Conversations among ``users`` people, clustered so that friendships form."""
    rng = random.Random(seed)
    people = [f"{prefix}_{n:03d}" for n in range(users)]
    circles = [people[i : i + 6] for i in range(0, users, 6)]
    stream = []
    for n in range(count):
        circle = rng.choice(circles) if rng.random() < 0.85 else people
        size = 2 if rng.random() < 0.8 else min(len(circle), rng.randint(3, 5))
        group = rng.sample(circle, size)
        ended = T0 + timedelta(seconds=rng.uniform(0, days * 86_400))
        messages = {p: rng.randint(0, 30) for p in group}
        stream.append(conversation(n, group, ended, minutes=rng.uniform(1, 150), messages=messages, prefix=prefix))
    return stream


__all__ = ["T0", "Status", "conversation", "random_stream", "reference_states"]
