"""What a handler learns about the delivery besides the typed event."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["EventContext"]


@dataclass(frozen=True, slots=True)
class EventContext:
    """CloudEvents attributes and delivery facts for one handler call.

    ``attempt`` starts at 1 and counts handler runs of this event on this queue: a retry after
    a failure comes back as attempt 2, 3, … (the ``eventbus-attempt`` header), so a handler can
    tell a retry from a first delivery. ``redelivered`` is the broker's flag: the previous
    consumer died, or shut down, before it acked, and the attempt number did not change.
    ``exchange`` and ``routing_key`` are where the event was first published, also for retries
    and replays that came back another way.

    ``partition_key`` and ``sequence`` are the CloudEvents ``partitionkey`` and ``sequence``
    attributes, when the producer set them (an outbox with ordering keys does): to apply only the
    newest event of a key, drop one whose sequence is not greater than the last one applied for
    its partition key (docs/ordering.md). ``sequence`` is None when absent or not a decimal number.
    """

    id: str
    source: str
    type: str
    time: datetime | None
    subject: str | None
    dataschema: str | None
    headers: Mapping[str, Any]
    redelivered: bool
    attempt: int
    queue: str
    exchange: str
    routing_key: str
    partition_key: str | None = None
    sequence: int | None = None
