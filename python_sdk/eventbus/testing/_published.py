"""Assertions on what a bus published to the memory broker: events, not bytes."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from .._contract import contract_for
from .._envelope import read_envelope
from .._parking import ORIGINAL_QUEUE_HEADER
from ..transports._memory import MemoryBroker, StoredMessage

__all__ = ["PublishedEvents"]

ModelT = TypeVar("ModelT", bound=BaseModel)


def _matches(event: BaseModel, fields: dict[str, Any]) -> bool:
    for name, expected in fields.items():
        value = getattr(event, name, None)
        value = getattr(value, "value", value)  # an enum field compares with its value too
        if value != expected and getattr(event, name, None) != expected:
            return False
    return True


class PublishedEvents:
    """The events published through a ``MemoryBroker`` (retry and park copies left out).

        published.one(FriendshipStatusChanged, status="friend")   # exactly one, returns it
        published.of(FriendshipStatusChanged)                      # all of that type, decoded
        published.count(FriendshipStatusChanged, status="friend")

    Events nobody in the test subscribes to are unroutable, as on RabbitMQ: call
    ``published.expect(FriendshipStatusChanged)`` first.
    """

    def __init__(self, broker: MemoryBroker) -> None:
        self._broker = broker
        self._since = 0

    def expect(self, *models: type[BaseModel]) -> None:
        """Make ``models`` routable as if another service subscribed to them. Like RabbitMQ, the
        memory broker refuses (``UnroutableError``) an event no queue is bound for, and a service
        under test usually publishes events only other services consume."""
        for model in models:
            contract = contract_for(model)
            self._broker.tap(contract.exchange, contract.routing_key)

    @property
    def messages(self) -> list[StoredMessage]:
        """Events as published (headers, properties, body), oldest first."""
        return [
            m for m in self._broker.published[self._since :]
            if m.event_type and ORIGINAL_QUEUE_HEADER not in (m.properties.headers or {})
        ]

    def of(self, model: type[ModelT], **fields: Any) -> list[ModelT]:
        """Every published event of ``model``'s type whose fields equal ``fields``, decoded."""
        contract = contract_for(model)
        found: list[ModelT] = []
        for message in self.messages:
            if message.event_type != contract.type:
                continue
            _, _, data, _ = read_envelope(message.properties.headers, message.properties.content_type, message.body)
            event = contract.decode(data)
            if _matches(event, fields):
                found.append(event)
        return found

    def count(self, model: type[BaseModel], **fields: Any) -> int:
        return len(self.of(model, **fields))

    def one(self, model: type[ModelT], **fields: Any) -> ModelT:
        """The one published ``model`` event with ``fields``; an AssertionError that lists what was
        published otherwise."""
        found = self.of(model, **fields)
        if len(found) != 1:
            seen = [f"{m.event_type} {m.message_id}" for m in self.messages] or ["nothing"]
            wanted = ", ".join(f"{k}={v!r}" for k, v in fields.items())
            raise AssertionError(
                f"expected exactly one {model.__name__}({wanted}), found {len(found)}; published: " + "; ".join(seen)
            )
        return found[0]

    def clear(self) -> None:
        """Forget what was published so far (the broker's record stays)."""
        self._since = len(self._broker.published)
