"""From one delivery to "call this handler with this event" or "park it because…", with no I/O.

Every delivery, whichever transport brought it (``transports/``), goes through
``QueueDispatcher.prepare``; what a failure means is decided in ``_settlement.plan_failure`` from
the subscription's ``RetryPolicy``, with the retry and DLQ copies' headers made here, so no
transport can drift in what it accepts, retries, parks and why.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from ._context import EventContext
from ._contract import EventContract
from ._delay import DELAY_PREFIX, TICK_MS, delay_ticks
from ._envelope import PARTITION_KEY, SEQUENCE, parse_sequence, read_envelope
from ._exceptions import EnvelopeError, EventValidationError
from ._limits import DEFAULT_LIMITS, InputLimits, check_raw
from ._parking import (
    ATTEMPT_HEADER,
    ORIGINAL_EXCHANGE_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    ParkReason,
    park_headers,
    retry_headers,
)
from ._retry import DEFAULT_RETRY, Retry, RetryPolicy, failure_reason

__all__ = [
    "Delivery",
    "QueueDispatcher",
    "Ready",
    "Subscription",
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
    retry: RetryPolicy = DEFAULT_RETRY
    timeout: float | None = None
    single_active_consumer: bool = False
    limits: InputLimits | None = None  # this queue's input limits, when not the bus's

    def with_layers(self, layers: Sequence[Callable[..., Any]]) -> Subscription:
        """The same subscription with ``layer(call_next, event, context)`` wrapped around the handler."""
        call = self.handler if self.wants_context else _ignore_context(self.handler)
        for layer in reversed(layers):
            call = partial(layer, call)
        return replace(self, handler=call, wants_context=True)


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


def _ignore_context(handler: Callable[..., Any]) -> Callable[[Any, Any], Any]:
    def call(event: Any, context: Any) -> Any:
        return handler(event)

    return call


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


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _origin(delivery: Delivery) -> tuple[str, str]:
    """Where the event was first published: a retry arrives through the delay machinery (or a
    replay through the default exchange), and carries its original exchange and key in headers."""
    if (not delivery.exchange or delivery.exchange.startswith(DELAY_PREFIX)) and delivery.headers:
        exchange = delivery.headers.get(ORIGINAL_EXCHANGE_HEADER)
        routing_key = delivery.headers.get(ORIGINAL_ROUTING_KEY_HEADER)
        if exchange is not None and routing_key is not None:
            return _text(exchange), _text(routing_key)
    return delivery.exchange, delivery.routing_key


def _parse_time(text: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


class QueueDispatcher:
    """Routes the deliveries of one queue to the subscription for their CloudEvents type."""

    def __init__(
        self, queue: str, subscriptions: Iterable[Subscription], limits: InputLimits = DEFAULT_LIMITS
    ) -> None:
        subscriptions = list(subscriptions)
        self.queue = queue
        own = [s.limits for s in subscriptions if s.limits is not None]
        self.limits = own[0] if own else limits
        self._by_type = {s.contract.type: s for s in subscriptions}

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self._by_type.values())

    @property
    def single_active_consumer(self) -> bool:
        """Whether the queue is declared for one active consumer (any of its subscriptions asked)."""
        return any(s.single_active_consumer for s in self._by_type.values())

    def retry_copy(self, delivery: Delivery, failure: BaseException, decision: Retry) -> tuple[int, dict[str, Any]]:
        """Delay ticks and headers of the copy that brings ``delivery`` back as ``decision.attempt``."""
        exchange, routing_key = _origin(delivery)
        ticks = delay_ticks(decision.delay)
        now = datetime.now(UTC)
        headers = retry_headers(
            delivery.headers, failure_reason(failure), exchange=exchange, routing_key=routing_key, queue=self.queue,
            attempt=decision.attempt, delay_ms=ticks * TICK_MS,
            deliver_at=now + timedelta(milliseconds=ticks * TICK_MS), now=now,
        )
        return ticks, headers

    def park_copy(self, delivery: Delivery, reason: ParkReason, attempt: int) -> dict[str, Any]:
        """Headers of the copy of ``delivery`` that goes to this queue's DLQ."""
        exchange, routing_key = _origin(delivery)
        return park_headers(delivery.headers, reason, exchange=exchange, routing_key=routing_key, queue=self.queue,
                            attempt=attempt)

    def prepare(self, delivery: Delivery) -> Ready | ParkReason:
        too_big = check_raw(delivery.body, self.limits)
        if too_big is not None:
            return ParkReason(too_big.reason, str(too_big), type(too_big).__name__)
        try:
            attributes, _, data, _ = read_envelope(delivery.headers, delivery.content_type, delivery.body)
        except EnvelopeError as exc:
            return ParkReason(exc.reason, str(exc), type(exc).__name__)
        event_type = attributes["type"]
        subscription = self._by_type.get(event_type)
        if subscription is None:
            known = ", ".join(sorted(self._by_type))
            return ParkReason(
                "unsupported_event_type",
                f"event type {event_type!r} has no handler on queue {self.queue} (handles: {known})",
                "ContractError",
            )
        try:
            event = subscription.contract.decode(data, self.limits)
        except EnvelopeError as exc:
            return ParkReason(exc.reason, str(exc), type(exc).__name__)
        except EventValidationError as exc:
            return ParkReason(exc.reason, str(exc), type(exc).__name__)
        exchange, routing_key = _origin(delivery)
        context = EventContext(  # the fields parse_envelope's CloudEventAttributes would hold
            id=attributes["id"],
            source=attributes["source"],
            type=event_type,
            time=_parse_time(attributes.get("time", "")),
            subject=attributes.get("subject"),
            dataschema=attributes.get("dataschema"),
            headers=delivery.headers or {},
            redelivered=delivery.redelivered,
            attempt=_attempt(delivery.headers),
            queue=self.queue,
            exchange=exchange,
            routing_key=routing_key,
            partition_key=attributes.get(PARTITION_KEY),
            sequence=parse_sequence(attributes.get(SEQUENCE)),
        )
        return Ready(subscription, event, context)

