"""One event turned into exactly what goes on the wire, shared by the async and sync publishers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from os import urandom
from typing import Any

from pydantic import BaseModel

from ._contract import EventContract, contract_for
from ._delay import TICK_MS, delay_ticks, ticks_until
from ._envelope import JSON_CONTENT_TYPE, format_time, put_binary_headers
from ._exceptions import ConfigurationError
from ._parking import DELIVER_AT_HEADER

__all__ = ["OutgoingMessage", "build_outgoing", "delayed_headers", "plan_delay", "random_event_id", "wrap_encoded"]


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """Body, destination and AMQP properties of one event, before any client library sees it."""

    exchange: str
    routing_key: str
    body: bytes
    headers: dict[str, Any]
    message_id: str
    event_type: str
    timestamp: datetime
    app_id: str
    content_type: str = JSON_CONTENT_TYPE
    delivery_mode: int = 2


def build_outgoing(
    event: BaseModel,
    *,
    source: str,
    subject: str | None = None,
    event_id: str | None = None,
    time: datetime | None = None,
    headers: Mapping[str, Any] | None = None,
    contract: EventContract[Any] | None = None,
    extensions: Mapping[str, str] | None = None,
) -> OutgoingMessage:
    """Validate ``event`` against its contract and wrap it in a binary-mode CloudEvent.

    ``event_id`` lets callers make ids deterministic (an outbox row, a scheduler tick) so that
    consumers deduplicate a re-publish; by default a random UUID is used.
    """
    contract = contract or contract_for(event)
    return wrap_encoded(
        contract, contract.encode(event), source=source, subject=subject, event_id=event_id, time=time,
        headers=headers, extensions=extensions,
    )


def wrap_encoded(
    contract: EventContract[Any],
    body: bytes,
    *,
    source: str,
    subject: str | None = None,
    event_id: str | None = None,
    time: datetime | None = None,
    headers: Mapping[str, Any] | None = None,
    extensions: Mapping[str, str] | None = None,
) -> OutgoingMessage:
    """Wrap a body that ``contract.encode`` made (and so validated) earlier, e.g. an outbox row.

    ``extensions`` are more CloudEvents attributes (e.g. ``ordering_extensions``), by name."""
    published = datetime.now(UTC)
    moment = time or published
    identifier = event_id or random_event_id()
    wire_headers = dict(headers) if headers else {}
    put_binary_headers(
        wire_headers, identifier, source, contract.type, format_time(moment), subject, contract.schema_id or None,
        extensions=extensions, trace=headers,
    )
    return OutgoingMessage(
        exchange=contract.exchange,
        routing_key=contract.routing_key,
        body=body,
        headers=wire_headers,
        message_id=identifier,
        event_type=contract.type,
        timestamp=published,  # the AMQP timestamp is the publish time (wire format), never the event's time
        app_id=source,
    )


def random_event_id() -> str:
    """``str(uuid.uuid4())`` in a third of the time: 16 random bytes with the version 4 and RFC 4122 variant bits."""
    raw = bytearray(urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40
    raw[8] = raw[8] & 0x3F | 0x80
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def plan_delay(delay: float | timedelta | None, at: datetime | None) -> int | None:
    """Ticks to hold an event back for ``delay`` or until ``at`` (never both); None for no delay."""
    if delay is not None and at is not None:
        raise ConfigurationError("give delay= or at=, not both")
    if at is not None:
        return ticks_until(at, datetime.now(UTC))
    if delay is not None:
        return delay_ticks(delay)
    return None


def delayed_headers(headers: dict[str, Any], ticks: int) -> dict[str, Any]:
    """The headers of a delayed event: its own plus when it is due (for people and tools)."""
    due = datetime.now(UTC) + timedelta(milliseconds=ticks * TICK_MS)
    return {**headers, DELIVER_AT_HEADER: format_time(due)}
