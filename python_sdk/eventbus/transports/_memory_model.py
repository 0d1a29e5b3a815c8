"""What the in-memory broker holds: queues, exchanges, stored messages, deliveries, topic matching.

Plain data (no broker logic): ``_memory.MemoryBroker`` routes, delivers and expires through these.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .._delay import Binding
from ._protocol import DeliveryCallback, Properties

if TYPE_CHECKING:
    from ._memory import MemorySession

__all__ = ["Exchange", "MemoryDelivery", "Queue", "StoredMessage", "topic_matches", "with_headers"]


@lru_cache(maxsize=16384)
def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: ``*`` is exactly one word, ``#`` zero or more."""
    return _match(tuple(pattern.split(".")), tuple(key.split(".")))


def _match(pattern: tuple[str, ...], words: tuple[str, ...]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    return bool(words) and (head == "*" or head == words[0]) and _match(rest, words[1:])


@dataclass(slots=True)
class StoredMessage:
    """A message on a queue (or as it was published): what a handler or a test can look at."""

    exchange: str
    routing_key: str
    properties: Properties
    body: bytes
    redelivered: bool = False
    delivery_count: int = 0
    expires_at: float | None = None

    @property
    def headers(self) -> dict[str, Any]:
        return dict(self.properties.headers or {})

    @property
    def event_type(self) -> str | None:
        return self.properties.message_type

    @property
    def message_id(self) -> str | None:
        return self.properties.message_id


@dataclass(slots=True, eq=False)
class MemoryDelivery:
    """One delivery to one consumer; the ``Incoming`` of the seam."""

    session: MemorySession
    queue: Queue
    stored: StoredMessage
    exchange: str
    routing_key: str
    redelivered: bool

    @property
    def body(self) -> bytes:
        return self.stored.body

    @property
    def properties(self) -> Properties:
        return self.stored.properties


@dataclass(eq=False)
class Queue:
    name: str
    arguments: dict[str, Any]
    messages: deque[StoredMessage] = field(default_factory=deque)
    consumers: list[tuple[MemorySession, DeliveryCallback]] = field(default_factory=list)
    turn: int = 0

    @property
    def ttl(self) -> float | None:
        value = self.arguments.get("x-message-ttl")
        return None if value is None else int(value) / 1000

    @property
    def quorum(self) -> bool:
        return self.arguments.get("x-queue-type") == "quorum"


@dataclass(eq=False)
class Exchange:
    name: str
    type: str
    arguments: dict[str, Any]
    bindings: list[Binding] = field(default_factory=list)


def with_headers(properties: Properties, headers: dict[str, Any]) -> Properties:
    copy = Properties()
    for name in Properties.__slots__:
        setattr(copy, name, getattr(properties, name))
    copy.headers = headers
    return copy
