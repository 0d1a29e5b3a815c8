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

    ``attempt`` starts at 1 and counts deliveries that reached a handler of this queue, so an
    idempotent handler can tell a retry from a first delivery; ``redelivered`` is the broker's
    flag (the previous consumer died or the channel closed before it acked).
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
