"""From one delivery to "call this handler with this event" or "park it because…", with no I/O.

Both I/O shells (aio-pika and pika) run every delivery through ``QueueDispatcher.prepare`` and
map handler failures through ``failure_reason``, so the two APIs cannot drift apart in what
they accept, what they park and why.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ._context import EventContext
from ._contract import EventContract
from ._envelope import parse_envelope
from ._exceptions import EnvelopeError, EventValidationError, ParkMessage
from ._parking import ATTEMPT_HEADER, ParkReason

__all__ = [
    "Delivery",
    "QueueDispatcher",
    "Ready",
    "Subscription",
    "failure_reason",
    "handler_arity",
]


@dataclass(frozen=True, slots=True)
class Subscription:
    """One handler bound to one event type on one queue."""

    contract: EventContract[Any]
    handler: Callable[..., Any]
    queue: str
    binding_keys: tuple[str, ...]
    wants_context: bool


@dataclass(frozen=True, slots=True)
class Delivery:
    """The parts of an AMQP delivery the dispatcher reads, whichever client received it."""

    body: bytes
    headers: Mapping[str, Any] | None
    content_type: str | None
    exchange: str
    routing_key: str
    redelivered: bool


@dataclass(frozen=True, slots=True)
class Ready:
    """A delivery that passed every check: call ``subscription.handler(event, context)``."""

    subscription: Subscription
    event: Any
    context: EventContext

    def call(self) -> Any:
        if self.subscription.wants_context:
            return self.subscription.handler(self.event, self.context)
        return self.subscription.handler(self.event)


def handler_arity(handler: Callable[..., Any]) -> bool:
    """True when the handler takes ``(event, context)``, False for ``(event)``; else a TypeError."""
    params = [
        p
        for p in inspect.signature(handler).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    if len(params) not in (1, 2):
        raise TypeError(f"handler {handler!r} must take (event) or (event, context)")
    return len(params) == 2


def _attempt(headers: Mapping[str, Any] | None) -> int:
    if not headers:
        return 1
    value = headers.get(ATTEMPT_HEADER)
    try:
        return max(1, int(value)) if value is not None else 1
    except (TypeError, ValueError):
        return 1


def _parse_time(text: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


class QueueDispatcher:
    """Routes the deliveries of one queue to the subscription for their CloudEvents type."""

    def __init__(self, queue: str, subscriptions: Iterable[Subscription]) -> None:
        self.queue = queue
        self._by_type = {s.contract.type: s for s in subscriptions}

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self._by_type.values())

    def prepare(self, delivery: Delivery) -> Ready | ParkReason:
        try:
            envelope = parse_envelope(delivery.headers, delivery.content_type, delivery.body)
        except EnvelopeError as exc:
            return ParkReason(exc.reason, str(exc), type(exc).__name__)
        attrs = envelope.attributes
        subscription = self._by_type.get(attrs.type)
        if subscription is None:
            known = ", ".join(sorted(self._by_type))
            return ParkReason(
                "unsupported_event_type",
                f"event type {attrs.type!r} has no handler on queue {self.queue} (handles: {known})",
                "ContractError",
            )
        try:
            event = subscription.contract.decode(envelope.data)
        except EnvelopeError as exc:
            return ParkReason(exc.reason, str(exc), type(exc).__name__)
        except EventValidationError as exc:
            return ParkReason(exc.reason, str(exc), type(exc).__name__)
        context = EventContext(
            id=attrs.id,
            source=attrs.source,
            type=attrs.type,
            time=_parse_time(attrs.time),
            subject=attrs.subject,
            dataschema=attrs.dataschema,
            headers=delivery.headers or {},
            redelivered=delivery.redelivered,
            attempt=_attempt(delivery.headers),
            queue=self.queue,
            exchange=delivery.exchange,
            routing_key=delivery.routing_key,
        )
        return Ready(subscription, event, context)


def failure_reason(exc: BaseException) -> ParkReason:
    """What to write in the DLQ when a handler raised ``exc``."""
    if isinstance(exc, ParkMessage):
        return ParkReason(exc.reason, str(exc), type(exc).__name__)
    kind = type(exc)
    return ParkReason("handler_error", f"{kind.__name__}: {exc}", f"{kind.__module__}.{kind.__qualname__}")
