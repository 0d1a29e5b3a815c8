"""The seam between the bus and a broker client: what ``EventBus`` needs, and nothing more.

``EventBus`` (its publisher and consumer) talks to a ``Transport`` and to nothing else below
it; every transport (the SDK's lean AMQP client, aio-pika, the in-memory broker of
``eventbus.testing``) implements these few methods, and one behaviour suite
(``tests/transports``) runs the same cases on each, so they cannot drift apart.

    declare(topology)                 exchanges, queues, bindings (once per connection)
    publish(batch) → outcomes         mandatory and confirmed; None or a PublishError per message
    consume(topologies, queues, n)    a Session: declare on it, then deliver to callbacks
    Session.ack / nack / cancel / close
    close()
    on_reply(callback)                optional (``DirectReplies``): RabbitMQ direct reply-to

Optional, for the scheduler (``Locking``): ``lock(name)`` takes a named leader lock (an exclusive
queue on RabbitMQ) and gives a ``Lock`` that publishes through the connection holding it; and
``clock``, when a transport brings its own time (the memory broker's ``MemoryClock``).

Everything above the seam (batching, delays, retries, parking, workers, time limits, drain)
is shared, so a transport is only the part that moves bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .._delay import Binding, ExchangeSpec
from .._topology import QueueSpec
from ._amqp import Properties

if TYPE_CHECKING:
    from .._exceptions import PublishError

__all__ = [
    "DIRECT_REPLY_TO", "DirectReplies", "Incoming", "Lock", "Locking", "Outgoing", "Properties", "Session", "Topology",
    "Transport",
]

Outgoing = tuple[str, str, Properties, bytes]
"""One message to publish: ``(exchange, routing_key, properties, body)``."""


@dataclass(frozen=True, slots=True)
class Topology:
    """What to declare, under a ``name`` a transport declares once per connection.

    Exchanges first, then queues (a queue made by an older eventbus without the delivery-limit
    safety net is accepted with a warning, see ``_topology.without_safety_net``), then bindings.
    """

    name: str
    exchanges: tuple[ExchangeSpec, ...] = ()
    queues: tuple[QueueSpec, ...] = ()
    bindings: tuple[Binding, ...] = ()


class Incoming(Protocol):
    """A delivery as the bus reads it, whichever transport received it."""

    @property
    def body(self) -> bytes: ...
    @property
    def properties(self) -> Properties: ...
    @property
    def exchange(self) -> str: ...
    @property
    def routing_key(self) -> str: ...
    @property
    def redelivered(self) -> bool: ...


DeliveryCallback = Callable[[Any], None]
"""Called with each ``Incoming`` of one queue, in delivery order, without awaiting anything."""


@runtime_checkable
class Session(Protocol):
    """One consuming connection. When it is lost, ``closed`` completes and the bus opens another.

    Settling a delivery of a session that is gone is a no-op: the broker has already put it back.
    """

    closed: asyncio.Future[None]

    def owns(self, delivery: Any) -> bool:
        """True when ``delivery`` came on this session and can still be settled here."""
        ...

    def ack(self, delivery: Any) -> None: ...

    def nack(self, delivery: Any, *, requeue: bool = True) -> None: ...

    async def cancel(self) -> None:
        """Stop new deliveries (the first step of a graceful shutdown)."""
        ...

    async def close(self) -> None:
        """Send the acks still due, hand every other unacked delivery back, disconnect."""
        ...


@runtime_checkable
class Transport(Protocol):
    """A broker client behind the bus: one publishing connection and consuming sessions.

    Errors: ``ConnectionFailedError`` when no broker answers, ``TopologyError`` (or its
    ``TopologyMismatchError``) when a declaration is refused; ``publish`` never raises for one
    message, it returns that message's ``PublishError`` (``UnroutableError`` for a mandatory
    return, ``PublishNackedError``, ``PublishTimeoutError`` …).
    """

    name: str

    async def declare(self, topology: Topology) -> None: ...

    async def publish(self, batch: Sequence[Outgoing]) -> list[PublishError | None]: ...

    async def consume(
        self, topologies: Sequence[Topology], queues: Mapping[str, DeliveryCallback], prefetch: int
    ) -> Session: ...

    async def close(self) -> None: ...


DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
"""RabbitMQ's direct reply-to pseudo-queue: a request carries it as ``reply_to``; the broker
rewrites it to a name that routes the reply (default exchange) straight to the requesting channel."""


@runtime_checkable
class DirectReplies(Protocol):
    """An optional capability of a transport, for request-reply (``EventBus.request``).

    After ``on_reply(callback)``, publishing a message whose ``reply_to`` is ``DIRECT_REPLY_TO``
    first consumes the pseudo-queue (no-ack) on the publishing channel, once per channel, and
    every reply that reaches that channel is handed to ``callback`` as an ``Incoming``. Replies
    for a channel that was lost are lost with it (their requests time out): nothing is left on
    the broker.
    """

    def on_reply(self, callback: DeliveryCallback) -> None: ...


@runtime_checkable
class Lock(Protocol):
    """A held leader lock. ``lost`` completes when the hold ends (released, or the connection
    holding it is gone); after that, ``publish`` fails: a leader that lost the lock cannot act."""

    lost: asyncio.Future[None]

    async def publish(self, batch: Sequence[Outgoing]) -> list[PublishError | None]:
        """Publish mandatory and confirmed through the lock's own connection."""
        ...

    async def release(self) -> None: ...


@runtime_checkable
class Locking(Protocol):
    """A transport that can hold named locks: at most one holder per name per broker (vhost)."""

    async def lock(self, name: str) -> Lock | None:
        """Take the lock ``name`` now: a ``Lock``, or None when another holder has it."""
        ...
