"""Delays on stock RabbitMQ (no plugin): binary-decomposed TTL queues, with no I/O.

A delay is rounded to ticks of 100 ms and written in binary, one routing-key word per bit,
most significant first, followed by the name of the queue that should finally get the message:

    ticks = 52 (5.2 s) → "0.0.….0.1.1.0.1.0.0.<target queue>"      (23 bit words)

Level k (k = 22 … 0) is a topic exchange ``eventbus.delay.v2.<k>`` plus a quorum queue of the
same name whose ``x-message-ttl`` is ``2**k`` ticks. The exchange looks at bit k: a ``1`` goes
into the level's queue, waits exactly its TTL, and is dead-lettered to the exchange of level
k-1; a ``0`` passes straight on to level k-1 through an exchange-to-exchange binding. After
level 0 the message reaches ``eventbus.delay.v2.deliver``, where the target queue is bound with
its own name behind 23 ``*`` words, so it matches that queue and no other.

Every queue here is a quorum queue with at-least-once dead-lettering (``x-dead-letter-strategy``
``at-least-once``, which needs ``x-overflow`` ``reject-publish``): on a cluster a waiting retry
or delayed message is replicated, and it leaves a level only once the next hop has confirmed
it, so losing a node loses nothing (a message may, rarely, be dead-lettered twice; the
consumer's inbox drops the copy). The first version (``eventbus.delay.<k>``, classic queues)
kept other names so that old deployments drain by themselves instead of meeting
PRECONDITION_FAILED; its queues can be deleted once empty.

Every message in one level queue has the same TTL, so they leave in the order they came:
a 5 s message published after a 1 h message is never stuck behind it (no head-of-line
blocking), and nothing is ever held unacknowledged by a consumer to implement a wait.

Targets:
- a retry targets the failing consumer's own queue (bound at consumer start), so it never
  reaches the other subscribers of the event;
- a delayed publish targets a landing queue ``eventbus.delayed.v2.<exchange>.<routing key>``
  with ``x-message-ttl`` 0 whose dead-letter exchange and routing key are the event's
  exchange and routing key, so it reaches every subscriber, as a direct publish would.
A message whose target no longer exists goes to ``eventbus.delay.v2.unroutable`` (alternate
exchange of the delivery exchange) instead of vanishing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ._exceptions import ConfigurationError
from ._topology import QueueSpec

__all__ = [
    "DELAY_LEVELS",
    "DELAY_PREFIX",
    "DELIVER_EXCHANGE",
    "MAX_DELAY",
    "TICK_MS",
    "UNROUTABLE_QUEUE",
    "Binding",
    "DelayRoute",
    "ExchangeSpec",
    "delay_route",
    "delay_topology",
    "delay_ticks",
    "landing_queue",
    "level_name",
    "target_binding_key",
]

TICK_MS = 100
DELAY_LEVELS = 23  # 2**23 ticks of 100 ms ≈ 9.7 days > MAX_DELAY
MAX_DELAY = timedelta(days=7)
DELAY_PREFIX = "eventbus.delay."  # every exchange a retry can arrive from starts with it (v1 and v2)
_V2 = "eventbus.delay.v2."
DELIVER_EXCHANGE = f"{_V2}deliver"
UNROUTABLE_QUEUE = f"{_V2}unroutable"
LANDING_PREFIX = "eventbus.delayed.v2."
# Replicated, and a message leaves a queue only once its next hop has it (RabbitMQ >= 3.10).
_REPLICATED: dict[str, Any] = {
    "x-queue-type": "quorum",
    "x-dead-letter-strategy": "at-least-once",
    "x-overflow": "reject-publish",
}
_MAX_TICKS = int(MAX_DELAY.total_seconds() * 1000) // TICK_MS
_ANY_BITS = ".".join("*" * DELAY_LEVELS)
# Routing keys are at most 255 bytes; 23 bit words and their dots take 46.
MAX_TARGET_LENGTH = 255 - 2 * DELAY_LEVELS


@dataclass(frozen=True, slots=True)
class ExchangeSpec:
    name: str
    type: str = "topic"
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Binding:
    """``source`` exchange → ``destination`` (a queue, or an exchange when ``to_exchange``)."""

    source: str
    destination: str
    routing_key: str
    to_exchange: bool = False


@dataclass(frozen=True, slots=True)
class DelayTopology:
    exchanges: tuple[ExchangeSpec, ...]
    queues: tuple[QueueSpec, ...]
    bindings: tuple[Binding, ...]


@dataclass(frozen=True, slots=True)
class DelayRoute:
    """Where to publish a message so that it reaches ``target`` after ``ticks`` ticks."""

    exchange: str
    routing_key: str
    ticks: int


def level_name(level: int) -> str:
    return f"{_V2}{level:02d}"


def _next_hop(level: int) -> str:
    return level_name(level - 1) if level else DELIVER_EXCHANGE


def delay_topology() -> DelayTopology:
    """Every exchange, queue and binding of the delay machinery (shared by all services)."""
    exchanges = [ExchangeSpec(UNROUTABLE_QUEUE, "fanout")]
    exchanges.append(ExchangeSpec(DELIVER_EXCHANGE, "topic", {"alternate-exchange": UNROUTABLE_QUEUE}))
    queues = [QueueSpec(UNROUTABLE_QUEUE, {"x-queue-type": "quorum"})]
    bindings = [Binding(UNROUTABLE_QUEUE, UNROUTABLE_QUEUE, "")]
    for level in range(DELAY_LEVELS):
        name = level_name(level)
        exchanges.append(ExchangeSpec(name))
        queues.append(
            QueueSpec(
                name,
                {
                    **_REPLICATED,
                    "x-message-ttl": TICK_MS << level,
                    "x-dead-letter-exchange": _next_hop(level),
                },
            )
        )
        prefix = "*." * (DELAY_LEVELS - 1 - level)
        bindings.append(Binding(name, name, f"{prefix}1.#"))
        bindings.append(Binding(name, _next_hop(level), f"{prefix}0.#", to_exchange=True))
    return DelayTopology(tuple(exchanges), tuple(queues), tuple(bindings))


def delay_ticks(delay: float | timedelta) -> int:
    """A delay in seconds (or a timedelta) as whole ticks, rounded to the nearest; 0 … 7 days."""
    seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
    if seconds < 0:
        seconds = 0.0  # an ETA in the past is due now
    ticks = round(seconds * 1000 / TICK_MS)
    if ticks > _MAX_TICKS:
        raise ConfigurationError(f"delay of {seconds:g}s is longer than the maximum of {MAX_DELAY.days} days")
    return ticks


def ticks_until(at: datetime, now: datetime) -> int:
    if at.tzinfo is None:
        raise ConfigurationError("at= needs a timezone-aware datetime")
    return delay_ticks(at - now)


def _check_target(target: str) -> None:
    if len(target.encode()) > MAX_TARGET_LENGTH:
        raise ConfigurationError(f"queue name {target!r} is too long to be a delay target ({MAX_TARGET_LENGTH} bytes)")


def delay_route(ticks: int, target: str) -> DelayRoute:
    """Publish to ``exchange`` with ``routing_key`` and ``target`` receives it after ``ticks`` ticks.

    The first exchange is the level of the highest set bit: the levels above it would only
    pass the message on.
    """
    _check_target(target)
    bits = ".".join("1" if ticks >> level & 1 else "0" for level in range(DELAY_LEVELS - 1, -1, -1))
    return DelayRoute(level_name(max(ticks.bit_length() - 1, 0)), f"{bits}.{target}", ticks)


def target_binding_key(queue: str) -> str:
    """The key that binds ``queue`` to the delivery exchange, matching its own name only."""
    _check_target(queue)
    return f"{_ANY_BITS}.{queue}"


def landing_queue(exchange: str, routing_key: str) -> QueueSpec:
    """The queue that hands a delayed event to its exchange with its routing key, at once."""
    name = f"{LANDING_PREFIX}{exchange}.{routing_key}"
    return QueueSpec(
        name,
        {
            **_REPLICATED,
            "x-message-ttl": 0,
            "x-dead-letter-exchange": exchange,
            "x-dead-letter-routing-key": routing_key,
        },
    )
