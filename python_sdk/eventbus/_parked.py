"""A parked message as people and tools see it, and the copy a replay sends back. No I/O.

Most DLQ messages were parked by the SDK and carry ``eventbus-`` headers (see
``_parking.py``); some were dead-lettered by the broker itself (the quorum queue's
``x-delivery-limit`` safety net), and only their ``x-death`` header says where from and why.
"""

from __future__ import annotations

import base64
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ._delay import UNROUTABLE_QUEUE
from ._envelope import format_time
from ._parking import (
    ATTEMPT_HEADER,
    ERROR_HEADER,
    ERROR_TYPE_HEADER,
    FIRST_FAILURE_HEADER,
    LAST_FAILURE_HEADER,
    ORIGINAL_EXCHANGE_HEADER,
    ORIGINAL_QUEUE_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    PARK_HEADERS,
    PARKED_AT_HEADER,
    REASON_HEADER,
    TRACEBACK_HEADER,
    copy_headers,
)

__all__ = ["REPLAYED_AT_HEADER", "REPLAYS_HEADER", "ParkedMessage", "describe_parked", "replay_headers"]

REPLAYED_AT_HEADER = "eventbus-replayed-at"
REPLAYS_HEADER = "eventbus-replays"
# What a replayed copy leaves behind: it starts over as attempt 1 with a clean history; only
# where it came from stays.
_ORIGIN_HEADERS = (ORIGINAL_EXCHANGE_HEADER, ORIGINAL_ROUTING_KEY_HEADER, ORIGINAL_QUEUE_HEADER)
_FAILURE_HEADERS = tuple(name for name in PARK_HEADERS if name not in _ORIGIN_HEADERS)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class ParkedMessage:
    """One message in a dead-letter queue, with the diagnosis its headers carry."""

    position: int
    event_id: str | None
    event_type: str | None
    reason: str
    error: str
    error_type: str
    attempts: int | None
    parked_at: str | None
    first_failure_at: str | None
    last_failure_at: str | None
    original_queue: str | None
    original_exchange: str | None
    original_routing_key: str | None
    traceback: str
    content_type: str | None
    body: bytes = field(repr=False)
    headers: Mapping[str, Any] = field(repr=False)

    def matches(self, ids: Collection[str] = (), reason: str | None = None) -> bool:
        """Selected by ``--id`` (any of ``ids``) and/or ``--reason`` (the code, or text in the error)."""
        if ids and self.event_id not in ids:
            return False
        if reason is not None:
            wanted = reason.lower()
            return self.reason.lower() == wanted or wanted in self.error.lower()
        return True

    def to_json(self) -> dict[str, Any]:
        try:
            body: Any = self.body.decode("utf-8")
            encoding = "utf-8"
        except UnicodeDecodeError:
            body, encoding = base64.b64encode(self.body).decode("ascii"), "base64"
        return {
            "position": self.position,
            "id": self.event_id,
            "type": self.event_type,
            "reason": self.reason,
            "error": self.error,
            "error_type": self.error_type,
            "attempts": self.attempts,
            "parked_at": self.parked_at,
            "first_failure_at": self.first_failure_at,
            "last_failure_at": self.last_failure_at,
            "original_queue": self.original_queue,
            "original_exchange": self.original_exchange,
            "original_routing_key": self.original_routing_key,
            "traceback": self.traceback,
            "content_type": self.content_type,
            "headers": {k: _jsonable(v) for k, v in self.headers.items()},
            "body": body,
            "body_encoding": encoding,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, datetime):
        return format_time(value if value.tzinfo else value.replace(tzinfo=UTC))
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _first_death(headers: Mapping[str, Any]) -> Mapping[str, Any]:
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], Mapping):
        return deaths[0]
    return {}


def describe_parked(
    headers: Mapping[str, Any] | None,
    *,
    queue: str,
    position: int,
    message_id: str | None,
    event_type: str | None,
    content_type: str | None,
    body: bytes,
) -> ParkedMessage:
    headers = dict(headers or {})
    death = _first_death(headers)
    reason = _text(headers.get(REASON_HEADER))
    if reason is None and queue == UNROUTABLE_QUEUE:
        reason = "unroutable"  # a retry or delayed event whose target queue was gone when it was due
    elif reason is None:
        # Dead-lettered by the broker, e.g. the quorum queue's delivery limit ("delivery_limit").
        reason = _text(death.get("reason")) or "unknown"
    keys = death.get("routing-keys")
    death_key = _text(keys[0]) if isinstance(keys, list) and keys else None
    return ParkedMessage(
        position=position,
        event_id=_text(headers.get("cloudEvents_id")) or message_id,
        event_type=_text(headers.get("cloudEvents_type")) or event_type,
        reason=reason,
        error=_text(headers.get(ERROR_HEADER)) or "",
        error_type=_text(headers.get(ERROR_TYPE_HEADER)) or "",
        attempts=_int(headers.get(ATTEMPT_HEADER)),
        parked_at=_text(headers.get(PARKED_AT_HEADER)) or _jsonable(death.get("time")),
        first_failure_at=_text(headers.get(FIRST_FAILURE_HEADER)),
        last_failure_at=_text(headers.get(LAST_FAILURE_HEADER)),
        original_queue=_text(headers.get(ORIGINAL_QUEUE_HEADER)) or _text(death.get("queue")),
        original_exchange=_text(headers.get(ORIGINAL_EXCHANGE_HEADER)) or _text(death.get("exchange")),
        original_routing_key=_text(headers.get(ORIGINAL_ROUTING_KEY_HEADER)) or death_key,
        traceback=_text(headers.get(TRACEBACK_HEADER)) or "",
        content_type=content_type,
        body=body,
        headers=headers,
    )


def replay_headers(parked: ParkedMessage, now: datetime | None = None) -> dict[str, Any]:
    """Headers of the copy a replay sends back: the event's own, the origin, a replay count; no failure
    history, so the consumer's retry policy starts over at attempt 1."""
    headers = copy_headers(parked.headers)
    for name in _FAILURE_HEADERS:
        headers.pop(name, None)
    if parked.original_exchange is not None and parked.original_routing_key is not None:
        headers[ORIGINAL_EXCHANGE_HEADER] = parked.original_exchange
        headers[ORIGINAL_ROUTING_KEY_HEADER] = parked.original_routing_key
    headers[REPLAYS_HEADER] = (_int(parked.headers.get(REPLAYS_HEADER)) or 0) + 1
    headers[REPLAYED_AT_HEADER] = format_time(now or datetime.now(UTC))
    return headers
