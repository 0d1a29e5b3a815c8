"""What a parked message carries: the original, byte for byte, plus why it was parked.

Parked messages keep their body, content type and CloudEvents headers, so ``eventbus dlq
replay`` can send them back unchanged; the SDK's bookkeeping lives in ``eventbus-`` headers,
never in ``x-`` (broker arguments) or ``cloudEvents_`` (the event's own attributes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ._envelope import format_time

__all__ = [
    "ATTEMPT_HEADER",
    "PARK_HEADERS",
    "ParkReason",
    "park_headers",
]

ATTEMPT_HEADER = "eventbus-attempt"
REASON_HEADER = "eventbus-park-reason"
ERROR_HEADER = "eventbus-error"
ERROR_TYPE_HEADER = "eventbus-error-type"
PARKED_AT_HEADER = "eventbus-parked-at"
ORIGINAL_EXCHANGE_HEADER = "eventbus-original-exchange"
ORIGINAL_ROUTING_KEY_HEADER = "eventbus-original-routing-key"
ORIGINAL_QUEUE_HEADER = "eventbus-original-queue"

PARK_HEADERS = (
    REASON_HEADER,
    ERROR_HEADER,
    ERROR_TYPE_HEADER,
    PARKED_AT_HEADER,
    ORIGINAL_EXCHANGE_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    ORIGINAL_QUEUE_HEADER,
    ATTEMPT_HEADER,
)

_MAX_ERROR_TEXT = 2000


@dataclass(frozen=True, slots=True)
class ParkReason:
    """Why a delivery goes to the DLQ: a stable code, a human sentence, the exception type."""

    code: str
    error: str
    error_type: str = ""


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
    """The DLQ copy's headers: everything the original had, plus the ``eventbus-`` diagnosis."""
    headers = dict(original or {})
    error = reason.error if len(reason.error) <= _MAX_ERROR_TEXT else reason.error[: _MAX_ERROR_TEXT - 1] + "…"
    headers.update(
        {
            REASON_HEADER: reason.code,
            ERROR_HEADER: error,
            ERROR_TYPE_HEADER: reason.error_type,
            PARKED_AT_HEADER: format_time(now or datetime.now(UTC)),
            ORIGINAL_EXCHANGE_HEADER: exchange,
            ORIGINAL_ROUTING_KEY_HEADER: routing_key,
            ORIGINAL_QUEUE_HEADER: queue,
            ATTEMPT_HEADER: attempt,
        }
    )
    return headers
