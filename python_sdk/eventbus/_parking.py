"""The ``eventbus-`` headers a message gains on its way through retries and into the DLQ.

A retried or parked message is a copy of the original, body and CloudEvents headers byte for
byte, so ``eventbus dlq replay`` can send it back unchanged. The SDK's bookkeeping lives in
``eventbus-`` headers, never in ``x-`` (broker arguments) or ``cloudEvents_`` (the event's own
attributes). The broker's own dead-letter headers (``x-death`` …), which every hop through a
delay queue adds, are dropped from the copies we publish: the history that matters is ours.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ._envelope import format_time

__all__ = [
    "ATTEMPT_HEADER",
    "DELIVER_AT_HEADER",
    "ERROR_HEADER",
    "ERROR_TYPE_HEADER",
    "FIRST_FAILURE_HEADER",
    "LAST_FAILURE_HEADER",
    "ORIGINAL_EXCHANGE_HEADER",
    "ORIGINAL_QUEUE_HEADER",
    "ORIGINAL_ROUTING_KEY_HEADER",
    "PARKED_AT_HEADER",
    "PARK_HEADERS",
    "REASON_HEADER",
    "RETRY_DELAY_HEADER",
    "TRACEBACK_HEADER",
    "ParkReason",
    "copy_headers",
    "park_headers",
    "retry_headers",
]

ATTEMPT_HEADER = "eventbus-attempt"
REASON_HEADER = "eventbus-park-reason"
ERROR_HEADER = "eventbus-error"
ERROR_TYPE_HEADER = "eventbus-error-type"
TRACEBACK_HEADER = "eventbus-traceback"
PARKED_AT_HEADER = "eventbus-parked-at"
FIRST_FAILURE_HEADER = "eventbus-first-failure-at"
LAST_FAILURE_HEADER = "eventbus-last-failure-at"
ORIGINAL_EXCHANGE_HEADER = "eventbus-original-exchange"
ORIGINAL_ROUTING_KEY_HEADER = "eventbus-original-routing-key"
ORIGINAL_QUEUE_HEADER = "eventbus-original-queue"
RETRY_DELAY_HEADER = "eventbus-retry-delay-ms"
DELIVER_AT_HEADER = "eventbus-deliver-at"

PARK_HEADERS = (
    REASON_HEADER,
    ERROR_HEADER,
    ERROR_TYPE_HEADER,
    TRACEBACK_HEADER,
    PARKED_AT_HEADER,
    FIRST_FAILURE_HEADER,
    LAST_FAILURE_HEADER,
    ORIGINAL_EXCHANGE_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    ORIGINAL_QUEUE_HEADER,
    ATTEMPT_HEADER,
    RETRY_DELAY_HEADER,
    DELIVER_AT_HEADER,
)

# Headers RabbitMQ adds when it dead-letters or redelivers; meaningless on a copy we publish.
_BROKER_HEADERS = frozenset(
    {
        "x-death",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
        "x-delivery-count",
    }
)

_MAX_ERROR_TEXT = 2000


@dataclass(frozen=True, slots=True)
class ParkReason:
    """Why a delivery goes to the DLQ: a stable code, a human sentence, the exception type, a traceback."""

    code: str
    error: str
    error_type: str = ""
    traceback: str = ""


def copy_headers(original: Mapping[str, Any] | None) -> dict[str, Any]:
    """The headers of ``original`` minus what the broker added on its way."""
    if not original:
        return {}
    return {k: v for k, v in original.items() if k not in _BROKER_HEADERS}


def _short(text: str) -> str:
    return text if len(text) <= _MAX_ERROR_TEXT else text[: _MAX_ERROR_TEXT - 1] + "…"


def _failure_history(
    original: Mapping[str, Any] | None,
    reason: ParkReason,
    now: datetime,
    *,
    exchange: str,
    routing_key: str,
    queue: str,
    attempt: int,
) -> tuple[dict[str, Any], str]:
    """What a retry copy and a DLQ copy both carry: the failure so far and where the message came from."""
    headers = copy_headers(original)
    stamp = format_time(now)
    first = headers.get(FIRST_FAILURE_HEADER)
    headers[FIRST_FAILURE_HEADER] = first.decode() if isinstance(first, bytes) else (first or stamp)
    headers[LAST_FAILURE_HEADER] = stamp
    headers[ERROR_HEADER] = _short(reason.error)
    headers[ERROR_TYPE_HEADER] = reason.error_type
    headers[ORIGINAL_EXCHANGE_HEADER] = exchange
    headers[ORIGINAL_ROUTING_KEY_HEADER] = routing_key
    headers[ORIGINAL_QUEUE_HEADER] = queue
    headers[ATTEMPT_HEADER] = attempt
    return headers, stamp


def retry_headers(
    original: Mapping[str, Any] | None,
    reason: ParkReason,
    *,
    exchange: str,
    routing_key: str,
    queue: str,
    attempt: int,
    delay_ms: int,
    deliver_at: datetime,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Headers of the copy that comes back to ``queue`` as attempt ``attempt`` after the delay."""
    headers, _ = _failure_history(
        original, reason, now or datetime.now(UTC),
        exchange=exchange, routing_key=routing_key, queue=queue, attempt=attempt,
    )
    headers[RETRY_DELAY_HEADER] = delay_ms
    headers[DELIVER_AT_HEADER] = format_time(deliver_at)
    return headers


def park_headers(
    original: Mapping[str, Any] | None,
    reason: ParkReason,
    *,
    exchange: str,
    routing_key: str,
    queue: str,
    attempt: int,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The DLQ copy's headers: everything the original had, plus the ``eventbus-`` diagnosis and history."""
    headers, stamp = _failure_history(
        original, reason, now or datetime.now(UTC),
        exchange=exchange, routing_key=routing_key, queue=queue, attempt=attempt,
    )
    headers.pop(RETRY_DELAY_HEADER, None)
    headers.pop(DELIVER_AT_HEADER, None)
    headers[REASON_HEADER] = reason.code
    headers[PARKED_AT_HEADER] = stamp
    if reason.traceback:
        headers[TRACEBACK_HEADER] = reason.traceback
    return headers
