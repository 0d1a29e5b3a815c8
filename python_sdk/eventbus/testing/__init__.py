"""Test your handlers without a broker: an in-memory broker on the bus's transport seam.

    broker = MemoryBroker()
    bus = memory_bus(broker, service="context-handling")
    bus.subscribe(ConversationEnded)(on_conversation_ended)
    await bus.start()
    await bus.publish(ConversationEnded(...))
    await broker.settle()                       # handlers ran, acks and retries settled
    PublishedEvents(broker).one(FriendshipStatusChanged, status="friend")
    await broker.clock.advance(30)              # delayed publishes, retries and cron ticks fall due

The bus above the seam is the real one: retries, parking, delays and the outbox relay run the
same code, and the copies they publish carry the same headers as on RabbitMQ. The pytest
plugin (``eventbus.testing.pytest_plugin``, registered as an entry point) gives the fixtures
``memory_broker``, ``memory_bus``, ``published``, ``clock`` and ``rabbitmq_bus`` (a real broker,
a throwaway vhost per test). See docs/testing.md.
"""

from __future__ import annotations

import contextlib as _contextlib
import weakref as _weakref
from collections.abc import Iterator as _Iterator
from typing import Any

from .._async_bus import EventBus as _EventBus
from .._async_bus import Middleware as _Middleware
from .._revocations import MemoryRevocations
from .._revocations import _substitute_with as _revocations_instead
from .._settings import BusSettings as _BusSettings
from ..transports import _substitute_with
from ..transports._memory import MemoryBroker, MemoryClock, MemoryTransport, StoredMessage
from ..workflow_engine._memory_store import MemoryWorkflowStore
from ._published import PublishedEvents

__all__ = [
    "MemoryBroker",
    "MemoryClock",
    "MemoryRevocations",
    "MemoryTransport",
    "MemoryWorkflowStore",
    "PublishedEvents",
    "StoredMessage",
    "in_memory",
    "memory_bus",
    "memory_revocations",
    "memory_workflows",
]

_REVOCATIONS: _weakref.WeakKeyDictionary[MemoryBroker, MemoryRevocations] = _weakref.WeakKeyDictionary()


def memory_revocations(broker: MemoryBroker) -> MemoryRevocations:
    """The revocation store of ``broker`` (one per broker, expiring on its clock): every memory bus
    of the broker checks it, so ``cancel`` and ``revoke`` work in tests as on Redis."""
    store = _REVOCATIONS.get(broker)
    if store is None:
        clock = broker.clock
        store = _REVOCATIONS[broker] = MemoryRevocations(lambda: clock.now)
    return store


_WORKFLOWS: _weakref.WeakKeyDictionary[MemoryBroker, MemoryWorkflowStore] = _weakref.WeakKeyDictionary()


def memory_workflows(broker: MemoryBroker) -> MemoryWorkflowStore:
    """The workflow engine's store of ``broker`` (one per broker): chords and tracking without Redis.

    ``WorkflowEngine(bus, store=memory_workflows(broker))`` joins chords; ``Workflows(store=...,
    bus=bus)`` lists, shows and retries; a join of a workflow cancelled on the broker never fires."""
    store = _WORKFLOWS.get(broker)
    if store is None:
        revocations = memory_revocations(broker)
        store = _WORKFLOWS[broker] = MemoryWorkflowStore(lambda workflow_id: revocations.revoked(workflow_id),
                                                         replay_scope=lambda: in_memory(broker))
    return store


def memory_bus(
    broker: MemoryBroker, service: str = "test", *, middleware: tuple[_Middleware, ...] = (), **settings: Any
) -> _EventBus:
    """An ``EventBus`` for ``service`` on ``broker``; ``settings`` are ``BusSettings`` fields."""
    return _EventBus(_BusSettings(service=service, **settings), middleware=middleware, transport=broker.transport(),
                     revocations=memory_revocations(broker))


@_contextlib.contextmanager
def in_memory(broker: MemoryBroker) -> _Iterator[MemoryBroker]:
    """Every ``EventBus`` made inside the block (and not given a transport object) runs on ``broker``.

    For testing code that builds its own bus from settings, e.g. a whole service:
    ``with in_memory(broker): service = create_service(settings)``. So do a ``Scheduler`` (its
    leader lock and ticks, on the broker's clock) and ``DeadLetters`` made in the block; their
    revocation store is the broker's (``memory_revocations``).
    """
    previous = _substitute_with(broker.transport)
    previous_store = _revocations_instead(lambda: memory_revocations(broker))
    try:
        yield broker
    finally:
        _substitute_with(previous)
        _revocations_instead(previous_store)
