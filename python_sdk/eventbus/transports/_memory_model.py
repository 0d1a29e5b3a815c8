"""What the in-memory broker stores: exchanges, stored messages, topic matching.

Plain data that knows no session (no broker logic): ``_memory.MemoryBroker`` routes and expires
through these; its queues and deliveries, which hold sessions, live beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .._delay import Binding
from ._protocol import Properties

__all__ = ["Exchange", "StoredMessage", "topic_matches", "with_headers"]


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
