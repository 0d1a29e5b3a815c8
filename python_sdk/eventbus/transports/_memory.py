"""An in-memory broker behind the transport seam, for handler tests that need no RabbitMQ.

It keeps the broker semantics a handler can observe, and runs the bus's own code above the
seam unchanged (retries, parking, delays, the outbox relay):

- exchanges (topic with ``*`` and ``#``, direct, fanout, the default exchange), exchange-to-
  exchange bindings, ``alternate-exchange``; a ``mandatory`` publish that reaches no queue
  fails with ``UnroutableError`` as on RabbitMQ;
- per-queue FIFO, consumers with a prefetch, ack, nack, requeue (``redelivered``), and a
  closed session hands its unacked deliveries back;
- ``x-message-ttl`` and dead-lettering (``x-dead-letter-exchange`` / ``-routing-key``) on a
  controllable clock, which is all the delay machinery of ``_delay.py`` needs: delayed
  publishes and retries travel the same exchanges and queues, with the same headers, as on
  RabbitMQ; ``clock.advance(seconds)`` makes them due;
- quorum queues' ``x-delivery-limit`` (``x-delivery-count`` header, then dead-lettered) and
  ``x-single-active-consumer`` (the oldest consumer receives; the next when it goes);
- a declaration with other arguments than the existing entity is a ``TopologyMismatchError``;
- named leader locks (the seam's ``Locking``, RabbitMQ's exclusive queue): one holder per name,
  lost when its holder's connection is (``drop_connections``, ``lose_locks``); so the
  scheduler runs here too, on the broker's clock (``MemoryClock.utcnow`` and ``sleep``).

Deliveries are handed to consumers from the event loop (``call_soon``), never inside the
publish that caused them, as a real broker would. ``await broker.settle()`` waits until
nothing is in flight: every deliverable message handled and settled.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .._delay import Binding, ExchangeSpec
from .._exceptions import PublishError, TopologyMismatchError, UnroutableError
from .._topology import QueueSpec
from ._memory_clock import MemoryClock
from ._memory_model import Exchange, StoredMessage, topic_matches, with_headers
from ._outcomes import publish_failure
from ._protocol import DIRECT_REPLY_TO, DeliveryCallback, Outgoing, Properties, Topology

__all__ = [
    "MemoryBroker",
    "MemoryClock",
    "MemoryDelivery",
    "MemoryLock",
    "MemorySession",
    "MemoryTransport",
    "StoredMessage",
]


_RETURNED = UnroutableError("NO_ROUTE")


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


class MemoryBroker:
    """One in-memory broker (think: one vhost). Give each bus ``broker.transport()``."""

    def __init__(self, *, start: datetime | None = None) -> None:
        """``start``: the UTC time the clock starts at (``MemoryClock.utcnow``; 2026-01-01 when None)."""
        self.clock = MemoryClock(self) if start is None else MemoryClock(self, start)
        self.published: list[StoredMessage] = []
        """Every message a client published and the broker accepted, in order (for assertions)."""
        self._exchanges: dict[str, Exchange] = {"": Exchange("", "direct", {})}
        self._queues: dict[str, Queue] = {}
        self._sessions: set[MemorySession] = set()
        self._pumping: set[str] = set()
        self._locks: dict[str, MemoryLock] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        """The event loop the broker runs on (set when a client first uses it): the blocking
        ``DeadLetters`` reaches it from another thread through this."""

    def transport(self) -> MemoryTransport:
        return MemoryTransport(self)

    # -- inspection -----------------------------------------------------------------------------

    def messages(self, queue: str) -> list[StoredMessage]:
        """What waits on ``queue`` now (not delivered, or handed back), oldest first."""
        return list(self._queues[queue].messages) if queue in self._queues else []

    def queues(self) -> list[str]:
        return sorted(self._queues)

    def depth(self, queue: str) -> int | None:
        """Messages waiting on ``queue``, or None when it does not exist."""
        return len(self._queues[queue].messages) if queue in self._queues else None

    def remove(self, queue: str, message: StoredMessage) -> None:
        """Take one waiting message off ``queue`` (a DLQ replay whose copy was routed)."""
        self._queues[queue].messages.remove(message)

    def purge(self, queue: str) -> int:
        """Delete every waiting message of ``queue``; how many there were (``queue.purge``)."""
        messages = self._queues[queue].messages
        count = len(messages)
        messages.clear()
        return count

    def delete_queue(self, queue: str) -> None:
        """Delete ``queue`` with its bindings and messages; its consumers stop receiving."""
        self._queues.pop(queue, None)
        for exchange in self._exchanges.values():
            exchange.bindings = [b for b in exchange.bindings if b.to_exchange or b.destination != queue]

    def unacked(self) -> int:
        return sum(len(s.unacked) for s in self._sessions)

    def tap(self, exchange: str, routing_key: str) -> str:
        """Bind a queue to ``exchange`` with ``routing_key`` (as a downstream subscriber would), so
        such publishes are routable; returns its name. Nothing consumes it."""
        name = f"eventbus.testing.tap.{exchange}.{routing_key}"
        self.declare(Topology(name, (ExchangeSpec(exchange),), (QueueSpec(name, {"x-queue-type": "classic"}),),
                              (Binding(exchange, name, routing_key),)))
        return name

    def drop_connections(self) -> None:
        """Every connection is lost at once (a network fault): unacked deliveries go back, locks
        are released."""
        for session in list(self._sessions):
            session.lose()
        self.lose_locks()

    def locks(self) -> dict[str, MemoryLock]:
        """The locks held now, by name."""
        return dict(self._locks)

    def lose_locks(self) -> None:
        """Every lock holder's connection is lost (the leader is cut off): the locks are free."""
        for lock in list(self._locks.values()):
            lock.lose()

    def take_lock(self, name: str) -> MemoryLock | None:
        if name in self._locks:
            return None
        lock = self._locks[name] = MemoryLock(self, name)
        return lock

    # -- declarations --------------------------------------------------------------------------

    def declare(self, topology: Topology) -> None:
        for exchange in topology.exchanges:
            self._declare_exchange(exchange)
        for queue in topology.queues:
            self._declare_queue(queue)
        for binding in topology.bindings:
            self._bind(binding)

    def _declare_exchange(self, spec: ExchangeSpec) -> None:
        existing = self._exchanges.get(spec.name)
        if existing is None:
            self._exchanges[spec.name] = Exchange(spec.name, spec.type, dict(spec.arguments))
        elif existing.type != spec.type or existing.arguments != dict(spec.arguments):
            raise TopologyMismatchError(
                f"exchange {spec.name!r}", f"declared as {spec.type} {spec.arguments}, exists as "
                f"{existing.type} {existing.arguments}"
            )

    def _declare_queue(self, spec: QueueSpec) -> None:
        existing = self._queues.get(spec.name)
        if existing is None:
            self._queues[spec.name] = Queue(spec.name, dict(spec.arguments))
            return
        for name in sorted(set(spec.arguments) | set(existing.arguments), key=lambda n: (n != "x-queue-type", n)):
            if spec.arguments.get(name) != existing.arguments.get(name):
                raise TopologyMismatchError(
                    f"queue {spec.name!r}", f"inequivalent arg '{name}': received {spec.arguments.get(name)!r} "
                    f"but current is {existing.arguments.get(name)!r}"
                )

    def _bind(self, binding: Binding) -> None:
        source = self._exchanges.get(binding.source)
        targets = self._exchanges if binding.to_exchange else self._queues
        if source is None or binding.destination not in targets:
            raise TopologyMismatchError("binding", f"no such exchange or queue in {binding}")
        if binding not in source.bindings:
            source.bindings.append(binding)

    # -- routing -------------------------------------------------------------------------------

    def publish(self, exchange: str, routing_key: str, properties: Properties, body: bytes) -> int:
        """Route a client's publish; the number of queues it reached (0: unroutable)."""
        if exchange not in self._exchanges:
            raise PublishError(f"NOT_FOUND - no exchange {exchange!r}", event_type=properties.message_type,
                               event_id=properties.message_id)
        reached = self._route(exchange, routing_key, properties, body, set())
        if reached:
            self.published.append(StoredMessage(exchange, routing_key, properties, body))
        return reached

    def _route(self, exchange: str, routing_key: str, properties: Properties, body: bytes, seen: set[str]) -> int:
        if exchange in seen:
            return 0
        seen.add(exchange)
        if exchange == "":
            queue = self._queues.get(routing_key)
            if queue is None:
                return 0
            self._enqueue(queue, StoredMessage(exchange, routing_key, properties, body))
            return 1
        source = self._exchanges.get(exchange)
        if source is None:
            return 0
        reached = 0
        for binding in source.bindings:
            if source.type == "fanout":
                hit = True
            elif source.type == "topic":
                hit = topic_matches(binding.routing_key, routing_key)
            else:
                hit = binding.routing_key == routing_key
            if not hit:
                continue
            if binding.to_exchange:
                reached += self._route(binding.destination, routing_key, properties, body, seen)
            elif binding.destination in self._queues:
                self._enqueue(self._queues[binding.destination],
                              StoredMessage(exchange, routing_key, properties, body))
                reached += 1
        alternate = source.arguments.get("alternate-exchange")
        if not reached and alternate:
            reached = self._route(alternate, routing_key, properties, body, seen)
        return reached

    def _enqueue(self, queue: Queue, message: StoredMessage, *, front: bool = False) -> None:
        ttl = queue.ttl
        if ttl == 0 and not self._has_room(queue):
            self._dead_letter(queue, message, "expired")  # TTL 0: gone unless a consumer takes it now
            return
        if ttl is not None and not front:
            message.expires_at = self.clock.now + ttl
        if front:
            queue.messages.appendleft(message)
        else:
            queue.messages.append(message)
        self._schedule(queue)

    def _dead_letter(self, queue: Queue, message: StoredMessage, reason: str) -> None:
        """As RabbitMQ does: to the queue's dead-letter exchange, with ``x-death`` history."""
        exchange = queue.arguments.get("x-dead-letter-exchange")
        if exchange is None:
            return  # dropped
        routing_key = queue.arguments.get("x-dead-letter-routing-key", message.routing_key)
        headers = dict(message.properties.headers or {})
        deaths = [dict(d) for d in headers.get("x-death", [])]
        for death in deaths:
            if death.get("queue") == queue.name and death.get("reason") == reason:
                death["count"] = int(death.get("count", 1)) + 1
                deaths.remove(death)
                deaths.insert(0, death)
                break
        else:
            deaths.insert(0, {"count": 1, "reason": reason, "queue": queue.name, "exchange": message.exchange,
                              "routing-keys": [message.routing_key]})
        headers["x-death"] = deaths
        headers.setdefault("x-first-death-exchange", message.exchange)
        headers.setdefault("x-first-death-queue", queue.name)
        headers.setdefault("x-first-death-reason", reason)
        headers.update({"x-last-death-exchange": message.exchange, "x-last-death-queue": queue.name,
                        "x-last-death-reason": reason})
        headers.pop("x-delivery-count", None)
        properties = with_headers(message.properties, headers)
        self._route(exchange, routing_key, properties, message.body, set())

    # -- delivering ----------------------------------------------------------------------------

    def _has_room(self, queue: Queue) -> bool:
        return any(session.has_room(queue) for session, _ in queue.consumers)

    def _schedule(self, queue: Queue) -> None:
        if queue.consumers and queue.name not in self._pumping:
            self._pumping.add(queue.name)
            asyncio.get_running_loop().call_soon(self._pump, queue)

    def _pump(self, queue: Queue) -> None:
        """Hand waiting messages to consumers with room, round robin, oldest first."""
        self._pumping.discard(queue.name)
        while queue.messages and queue.consumers:
            # x-single-active-consumer: only the oldest consumer still there receives
            count = 1 if queue.arguments.get("x-single-active-consumer") else len(queue.consumers)
            for offset in range(count):
                session, callback = queue.consumers[(queue.turn + offset) % count]
                if session.has_room(queue):
                    queue.turn = (queue.turn + offset + 1) % count
                    break
            else:
                return
            message = queue.messages.popleft()
            if message.delivery_count and queue.quorum:
                headers = {**(message.properties.headers or {}), "x-delivery-count": message.delivery_count}
                message.properties = with_headers(message.properties, headers)
            delivery = MemoryDelivery(session, queue, message, message.exchange, message.routing_key,
                                      message.redelivered)
            session.unacked.append(delivery)
            callback(delivery)

    def _returned(self, delivery: MemoryDelivery) -> None:
        """A delivery nacked with requeue or left unacked by a lost session: back to the head."""
        queue, message = delivery.queue, delivery.stored
        message.redelivered = True
        message.delivery_count += 1
        limit = queue.arguments.get("x-delivery-limit")
        if queue.quorum and limit is not None and message.delivery_count > int(limit):
            self._dead_letter(queue, message, "delivery_limit")
            return
        self._enqueue(queue, message, front=True)

    # -- time ----------------------------------------------------------------------------------

    def _next_expiry(self) -> float | None:
        due = [q.messages[0].expires_at for q in self._queues.values() if q.messages and q.messages[0].expires_at]
        wake = self.clock.next_wake()
        if wake is not None:
            due.append(wake)
        return min(due) if due else None

    def _expire(self) -> None:
        for queue in list(self._queues.values()):
            while queue.messages and queue.messages[0].expires_at is not None \
                    and queue.messages[0].expires_at <= self.clock.now:
                self._dead_letter(queue, queue.messages.popleft(), "expired")

    async def advance(self, seconds: float) -> None:
        target = self.clock.now + seconds
        await self.settle()
        while True:
            due = self._next_expiry()
            if due is None or due > target + 1e-9:
                break
            self.clock.now = max(self.clock.now, due)
            self._expire()
            self.clock.wake()
            await self.settle()
        self.clock.now = target
        self.clock.wake()
        await self.settle()

    def busy(self) -> bool:
        """True while a delivery is unacked, or a queue with a consumer with room has messages."""
        if self._pumping or self.clock.waking or any(s.unacked for s in self._sessions):
            return True
        return any(q.messages and self._has_room(q) for q in self._queues.values())

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until every deliverable message is handled and settled (handlers included)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet = 0
        while quiet < 3:  # quiet for a few loop turns in a row: no callback is about to publish
            await asyncio.sleep(0)
            quiet = 0 if self.busy() else quiet + 1
            if quiet == 0 and loop.time() > deadline:
                raise TimeoutError(f"the memory broker is still busy after {timeout:g}s: {self.unacked()} unacked")
            if quiet == 0 and not self._pumping:
                await asyncio.sleep(0.001)  # a handler may be waiting on real I/O or a thread


class MemorySession:
    """One consumer session on the memory broker (the seam's ``Session``)."""

    _ids = itertools.count(1)

    def __init__(self, broker: MemoryBroker, prefetch: int) -> None:
        self.broker = broker
        self.prefetch = prefetch
        self.unacked: list[MemoryDelivery] = []
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.id = next(self._ids)
        self._queues: list[Queue] = []

    def has_room(self, queue: Queue) -> bool:
        return sum(1 for d in self.unacked if d.queue is queue) < self.prefetch

    def attach(self, queue: Queue, callback: DeliveryCallback) -> None:
        queue.consumers.append((self, callback))
        self._queues.append(queue)
        self.broker._schedule(queue)

    def owns(self, delivery: Any) -> bool:
        return getattr(delivery, "session", None) is self

    def _take(self, delivery: Any) -> bool:
        if not self.owns(delivery) or delivery not in self.unacked:
            return False
        self.unacked.remove(delivery)
        self.broker._schedule(delivery.queue)
        return True

    def ack(self, delivery: Any) -> None:
        self._take(delivery)

    def nack(self, delivery: Any, *, requeue: bool = True) -> None:
        if not self._take(delivery):
            return
        if requeue:
            self.broker._returned(delivery)
        else:
            self.broker._dead_letter(delivery.queue, delivery.stored, "rejected")

    async def cancel(self) -> None:
        for queue in self._queues:
            queue.consumers = [c for c in queue.consumers if c[0] is not self]
        self._queues.clear()

    def lose(self) -> None:
        """The session ends without a goodbye: unacked deliveries go back, in order."""
        for queue in self._queues:
            queue.consumers = [c for c in queue.consumers if c[0] is not self]
        self._queues.clear()
        unacked, self.unacked = self.unacked, []
        for delivery in reversed(unacked):
            self.broker._returned(delivery)
        self.broker._sessions.discard(self)
        if not self.closed.done():
            self.closed.set_result(None)

    async def close(self) -> None:
        self.lose()


@dataclass(frozen=True)
class _Reply:
    """A direct reply-to delivery (the ``Incoming`` a requester's callback gets)."""

    body: bytes
    properties: Properties
    routing_key: str
    exchange: str = ""
    redelivered: bool = False


# broker → reply-to name → requester's callback (kept beside the broker, which knows nothing of it)
_REPLIERS: weakref.WeakKeyDictionary[MemoryBroker, dict[str, DeliveryCallback]] = weakref.WeakKeyDictionary()
_REPLY_NAMES = itertools.count(1)


class MemoryLock:
    """A held lock on the memory broker (the seam's ``Lock``)."""

    def __init__(self, broker: MemoryBroker, name: str) -> None:
        self.broker = broker
        self.name = name
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def publish(self, batch: Sequence[Outgoing]) -> list[PublishError | None]:
        if self.lost.done():
            raise ConnectionError(f"the lock {self.name!r} is lost: its connection is closed")
        return _publish(self.broker, batch)

    def lose(self) -> None:
        if self.broker._locks.get(self.name) is self:
            del self.broker._locks[self.name]
        if not self.lost.done():
            self.lost.set_result(None)

    async def release(self) -> None:
        self.lose()


def _publish(broker: MemoryBroker, batch: Sequence[Outgoing]) -> list[PublishError | None]:
    outcomes: list[PublishError | None] = []
    for exchange, routing_key, properties, body in batch:
        try:
            reached = broker.publish(exchange, routing_key, properties, body)
        except PublishError as exc:
            outcomes.append(exc)
            continue
        outcomes.append(None if reached else publish_failure(exchange, routing_key, properties, _RETURNED))
    return outcomes


class MemoryTransport:
    """A bus's view of a ``MemoryBroker`` (the seam's ``Transport``, with ``Locking``, a clock and
    direct reply-to (``DirectReplies``): a request's ``reply_to`` becomes a name of this transport,
    and a publish to that name on the default exchange goes straight to its callback, or nowhere)."""

    name = "memory"

    def __init__(self, broker: MemoryBroker) -> None:
        self.broker = broker
        self._reply_name = ""
        self.clock = broker.clock

    def on_reply(self, callback: DeliveryCallback) -> None:
        self._reply_name = f"{DIRECT_REPLY_TO}.memory-{next(_REPLY_NAMES)}"
        _REPLIERS.setdefault(self.broker, {})[self._reply_name] = callback

    def _direct_reply(self, exchange: str, routing_key: str, properties: Properties, body: bytes) -> bool:
        if exchange or not routing_key.startswith(DIRECT_REPLY_TO + "."):
            return False
        callback = _REPLIERS.get(self.broker, {}).get(routing_key)
        if callback is not None:  # else the requester is gone: dropped, as RabbitMQ does
            callback(_Reply(body, properties, routing_key))
        return True

    def _on_loop(self) -> None:
        self.broker.loop = asyncio.get_running_loop()

    async def lock(self, name: str) -> MemoryLock | None:
        self._on_loop()
        return self.broker.take_lock(name)

    async def declare(self, topology: Topology) -> None:
        self._on_loop()
        self.broker.declare(topology)

    async def publish(self, batch: Sequence[Outgoing]) -> list[PublishError | None]:
        self._on_loop()
        outcomes: list[PublishError | None] = []
        for exchange, routing_key, properties, body in batch:
            if self._direct_reply(exchange, routing_key, properties, body):
                outcomes.append(None)
                continue
            if properties.reply_to == DIRECT_REPLY_TO and self._reply_name:
                properties = copy.copy(properties)
                properties.reply_to = self._reply_name
            outcomes.extend(_publish(self.broker, [(exchange, routing_key, properties, body)]))
        return outcomes

    async def consume(
        self, topologies: Sequence[Topology], queues: Mapping[str, DeliveryCallback], prefetch: int
    ) -> MemorySession:
        self._on_loop()
        for topology in topologies:
            self.broker.declare(topology)
        session = MemorySession(self.broker, prefetch)
        self.broker._sessions.add(session)
        for name, callback in queues.items():
            session.attach(self.broker._queues[name], callback)
        return session

    async def close(self) -> None:
        return None
