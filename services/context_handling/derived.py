"""The events the service publishes, and their deterministic ids.

A derived event's id is a UUIDv5 of what caused it: the conversation's event id (or the decay
recompute's midnight) and the pair or user it is about. Processing the same cause again can only
produce the same id, so a re-publish by the outbox relay, or a re-run of a job, is a duplicate
any consumer recognises by ``cloudEvents_id``, never a second change.

Each derived event also has an ordering key, the pair (``user_a/user_b``) or the user, and a
version: the key's next sequence number from the outbox (``Outbox.next_sequences``), taken in the
same transaction before the events are built, and written both in the payload (``version``) and
as the CloudEvents ``sequence`` attribute. The
relay publishes the events of one key in that order, and a consumer that applies only versions
greater than the last one it applied for the key never goes back to an older state.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime

from eventbus import OutboxEntry
from eventbus_contracts import CandidatesUpdatedV1, FriendshipStatusChangedV1

from .candidates import RankedCandidate
from .scoring import Status

__all__ = ["candidates_updated", "derived_event_id", "pair_key", "status_changed"]

# Fixed forever: changing it would give every derived event a new id.
NAMESPACE = uuid.UUID("6f1c3a52-1f0e-4c54-9a58-2f7d9e3b8c11")


_NAMESPACED_SHA1 = hashlib.sha1(NAMESPACE.bytes, usedforsecurity=False)


def derived_event_id(kind: str, cause: str, about: str) -> str:
    """``str(uuid.uuid5(NAMESPACE, f"{kind}\\x1f{cause}\\x1f{about}"))``, computed without the UUID object
    (a few µs for each of the ~2.7 derived events per conversation; the test checks they are equal)."""
    digest = _NAMESPACED_SHA1.copy()
    digest.update(f"{kind}\x1f{cause}\x1f{about}".encode())
    raw = bytearray(digest.digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def status_changed(
    pair: tuple[str, str],
    previous: Status,
    current: Status,
    score: float,
    changed_at: datetime,
    *,
    cause_id: str,
    conversation_id: str | None,
    version: int,
) -> OutboxEntry:
    """``context.friendship.status_changed.v1`` for a pair; ``cause_id`` is the event id or tick id,
    ``version`` the pair's next sequence (``Outbox.next_sequences`` of ``pair_key(pair)``)."""
    event = FriendshipStatusChangedV1(
        user_a=pair[0],
        user_b=pair[1],
        previous_status=previous.value,
        status=current.value,
        score=round(score, 6),
        changed_at=changed_at,
        cause="conversation" if conversation_id else "decay",
        **({"conversation_id": conversation_id} if conversation_id else {}),
        version=version,
    )
    key = pair_key(pair)
    return OutboxEntry(
        event, event_id=derived_event_id("status", cause_id, key), subject=key, time=changed_at, partition_key=key,
        sequence=version,
    )


def candidates_updated(
    user: str,
    ranked: Sequence[RankedCandidate],
    computed_at: datetime,
    *,
    cause_id: str,
    conversation_id: str | None,
    version: int,
) -> OutboxEntry:
    """``context.candidates.updated.v1`` for one user; ``version`` the user's next sequence."""
    event = CandidatesUpdatedV1(
        user_id=user,
        candidates=[
            {"user_id": c.user_id, "rank_score": round(c.rank_score, 6), "mutual_friends": c.mutual_friends}
            for c in ranked
        ],
        computed_at=computed_at,
        **({"conversation_id": conversation_id} if conversation_id else {}),
        version=version,
    )
    return OutboxEntry(
        event, event_id=derived_event_id("candidates", cause_id, user), subject=user, time=computed_at,
        partition_key=user, sequence=version,
    )


def pair_key(pair: tuple[str, str]) -> str:
    """A pair's subject and ordering key: ``user_a/user_b`` (user ids never contain a slash)."""
    return f"{pair[0]}/{pair[1]}"
