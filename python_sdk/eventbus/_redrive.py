"""Send parked messages back to the queue they were parked from, when a predicate says so.

A message parked because the database was down is worth another try once it is back; one parked
because its data broke the contract is not. ``redrive_parked`` looks at each message waiting in
``<queue>.dlq`` (up to ``limit``, as many as were there when it started, so a message that is
parked again meanwhile is not looped over), republishes the chosen ones to ``<queue>`` through
the default exchange with a confirm, and only then removes them from the DLQ. The others go back
to the DLQ untouched. The re-driven copy keeps its body and CloudEvents headers (so its event
id, and any consumer-side deduplication, still holds) and loses the ``eventbus-`` park headers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
import aiormq

from ._amqp_connect import connect_first
from ._envelope import format_time
from ._parking import (
    ATTEMPT_HEADER,
    ERROR_HEADER,
    ERROR_TYPE_HEADER,
    ORIGINAL_QUEUE_HEADER,
    PARK_HEADERS,
    REASON_HEADER,
)
from ._settings import BusSettings
from ._topology import dead_letter_queue_name

__all__ = ["ParkedMessage", "RedriveReport", "redrive_parked"]

REDRIVEN_AT_HEADER = "eventbus-redriven-at"


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return "" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class ParkedMessage:
    """What the predicate sees of one parked message."""

    queue: str
    reason: str
    error: str
    error_type: str
    attempt: int
    message_id: str | None
    headers: Mapping[str, Any]
    body: bytes


@dataclass(frozen=True, slots=True)
class RedriveReport:
    examined: int
    redriven: int
    kept: int


def _parked(queue: str, message: aio_pika.abc.AbstractIncomingMessage) -> ParkedMessage:
    headers = dict(message.headers or {})
    try:
        attempt = int(headers.get(ATTEMPT_HEADER, 1))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        attempt = 1
    return ParkedMessage(
        queue=_text(headers.get(ORIGINAL_QUEUE_HEADER)) or queue,
        reason=_text(headers.get(REASON_HEADER)),
        error=_text(headers.get(ERROR_HEADER)),
        error_type=_text(headers.get(ERROR_TYPE_HEADER)),
        attempt=attempt,
        message_id=message.message_id,
        headers=headers,
        body=message.body,
    )


async def redrive_parked(
    settings: BusSettings,
    queue: str,
    *,
    select: Callable[[ParkedMessage], bool],
    limit: int = 1000,
) -> RedriveReport:
    """Move the parked messages of ``queue`` that ``select`` accepts back onto ``queue``."""
    connection = await connect_first(settings, "redrive", robust=False)
    try:
        channel = await connection.channel(publisher_confirms=True)
        try:
            dlq = await channel.declare_queue(dead_letter_queue_name(queue), passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity:
            return RedriveReport(0, 0, 0)
        depth = dlq.declaration_result.message_count or 0
        kept: list[aio_pika.abc.AbstractIncomingMessage] = []
        examined = redriven = 0
        for _ in range(min(depth, limit)):
            message = await dlq.get(no_ack=False, fail=False)
            if message is None:
                break
            examined += 1
            parked = _parked(queue, message)
            if not select(parked):
                kept.append(message)
                continue
            headers = {k: v for k, v in parked.headers.items() if k not in PARK_HEADERS}
            headers[REDRIVEN_AT_HEADER] = format_time(datetime.now(UTC))
            copy = aio_pika.Message(
                message.body,
                headers=headers,
                content_type=message.content_type,
                content_encoding=message.content_encoding,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=message.message_id,
                type=message.type,
                timestamp=message.timestamp,
                app_id=message.app_id,
                correlation_id=message.correlation_id,
            )
            await channel.default_exchange.publish(copy, routing_key=parked.queue, mandatory=True)
            await message.ack()
            redriven += 1
        for message in kept:
            await message.nack(requeue=True)
        return RedriveReport(examined=examined, redriven=redriven, kept=len(kept))
    finally:
        await connection.close()
