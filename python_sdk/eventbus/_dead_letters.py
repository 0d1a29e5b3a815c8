"""Looking into dead-letter queues and sending messages back, without losing any.

Reading is non-destructive: one pass takes every message the queue held when the pass began,
unacked, and hands back whatever is not replayed with a single ``nack(requeue)`` at the end.
A full pass is needed because quorum queues put returned messages at the *back*: handing
back only the first page would rotate the queue. After a full pass the order is what it
was (messages parked meanwhile end up in front of the returned ones).

Replay publishes a copy to the message's original consumer queue through the default exchange,
with ``mandatory`` and a publisher confirm, and acks (removes) the DLQ message only after the
confirm. A failed publish leaves the message in the DLQ.

A blocking API (the CLI's ``eventbus dlq``) over the SDK's own AMQP client, which runs on a
private event-loop thread (``_loop_thread``); progress callbacks run in the caller's thread.

Made inside ``eventbus.testing.in_memory(broker)``, it works on that in-memory broker instead
(``_InMemory``): same selection, same replay copies, so "this handler parks, and a replay
succeeds" is testable without RabbitMQ.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ._delay import UNROUTABLE_QUEUE
from ._exceptions import ConfigurationError, TopologyError
from ._loop_thread import LoopThread
from ._parked import ParkedMessage, describe_parked, replay_headers
from ._settings import BusSettings
from .transports import _substituted
from .transports._amqp import Channel, ChannelClosedError, Connection, MessageNacked, MessageReturned, Properties
from .transports._broker import CONNECTION_ERRORS
from .transports._connect import connect_first
from .transports._memory import MemoryBroker, MemoryTransport, StoredMessage

__all__ = ["DeadLetters", "ReplayResult", "is_dead_letter_queue"]

Progress = Callable[[int, int], None]
T = TypeVar("T")
_NOT_FOUND = 404


def is_dead_letter_queue(name: str) -> bool:
    return name.endswith(".dlq") or name == UNROUTABLE_QUEUE


@dataclass
class ReplayResult:
    """What a replay did: ids sent back, and why the others that were selected stayed."""

    scanned: int = 0
    replayed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


async def _ack(channel: Channel, tag: int) -> None:
    channel.basic_ack(tag)  # on the loop thread: the client is not thread-safe


class _InMemory:
    """The dead-letter operations on a ``MemoryBroker``, run on the broker's event loop."""

    def __init__(self, broker: MemoryBroker) -> None:
        self.broker = broker

    def call(self, work: Callable[[], T]) -> T:
        """Run ``work`` on the broker's loop: here when this thread runs it, else from this
        worker thread through ``run_coroutine_threadsafe``."""
        loop = self.broker.loop
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if loop is None or here is loop or not loop.is_running():
            return work()

        async def run() -> T:
            return work()

        return asyncio.run_coroutine_threadsafe(run(), loop).result()

    def parked(self, queue: str) -> list[tuple[StoredMessage, ParkedMessage]]:
        return [
            (stored, describe_parked(
                stored.headers, queue=queue, position=position, message_id=stored.message_id,
                event_type=stored.event_type, content_type=stored.properties.content_type, body=stored.body,
            ))
            for position, stored in enumerate(self.broker.messages(queue))
        ]

    def send_back(self, queue: str, stored: StoredMessage, parked: ParkedMessage) -> str | None:
        target = parked.original_queue
        if not target:
            return "no original queue recorded"
        properties = Properties(
            content_type=parked.content_type, delivery_mode=2, message_id=parked.event_id,
            message_type=parked.event_type, headers=replay_headers(parked),
        )
        if not self.broker.publish("", target, properties, parked.body):
            return f"queue {target!r} does not exist"
        self.broker.remove(queue, stored)
        return None


class DeadLetters:
    """Inspect, replay and purge dead-letter queues. ``with DeadLetters(settings) as dlq: …``"""

    def __init__(self, settings: BusSettings) -> None:
        self._settings = settings
        self._runner = LoopThread(f"eventbus-dlq-{settings.service}")
        self._connection: Connection | None = None
        transport = _substituted()
        self._memory = _InMemory(transport.broker) if isinstance(transport, MemoryTransport) else None

    def __enter__(self) -> DeadLetters:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        return self._runner.call(work)

    async def _channel(self, *, confirms: bool = False) -> Channel:
        if self._connection is None or self._connection.is_closed:
            self._connection = await connect_first(self._settings, "dlq")
        return await self._connection.channel(publisher_confirms=confirms)

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(*CONNECTION_ERRORS):
                await connection.close()

    def close(self) -> None:
        self._runner.close(self._close())

    async def _depth(self, queue: str) -> int | None:
        channel = await self._channel()
        try:
            return (await channel.queue_declare(queue, passive=True)).message_count or 0
        except ChannelClosedError as exc:
            if exc.code == _NOT_FOUND:
                return None
            raise TopologyError(str(exc)) from None
        finally:
            await channel.close()

    def depth(self, queue: str) -> int | None:
        """Messages in ``queue``, or None when it does not exist."""
        if self._memory is not None:
            broker = self._memory.broker
            return self._memory.call(lambda: broker.depth(queue))
        return self._run(self._depth(queue))

    def depths(self, queues: Iterable[str]) -> dict[str, int]:
        """The depth of each queue in ``queues`` that exists."""
        found = {}
        for queue in queues:
            depth = self.depth(queue)
            if depth is not None:
                found[queue] = depth
        return found

    def _require(self, queue: str) -> int:
        depth = self.depth(queue)
        if depth is None:
            raise ConfigurationError(f"queue {queue!r} does not exist")
        return depth

    def _pass(self, channel: Channel, queue: str, total: int) -> Iterator[tuple[int, ParkedMessage]]:
        """The first ``total`` messages of the queue in order, unacked; yields (delivery tag, message).

        ``basic.get`` one by one rather than a consumer: a consumer's prefetch buffer would hand
        messages back out of order when it is cancelled.
        """
        for position in range(total):
            message = self._run(channel.basic_get(queue))
            if message is None:
                return  # fewer than announced: someone else took some meanwhile
            properties = message.properties
            parked = describe_parked(
                properties.headers, queue=queue, position=position, message_id=properties.message_id,
                event_type=properties.message_type, content_type=properties.content_type, body=message.body,
            )
            yield message.delivery_tag, parked

    def _hand_back(self, channel: Channel) -> None:
        """Everything still unacked goes back, in the order it was taken."""

        async def hand_back() -> None:
            if not channel.is_closed:
                channel.basic_nack(0, multiple=True, requeue=True)
                await channel.close()

        self._run(hand_back())

    def peek(self, queue: str, *, skip: int = 0, limit: int = 20,
             progress: Progress | None = None) -> tuple[int, list[ParkedMessage]]:
        """(depth, messages ``skip`` … ``skip + limit``) of ``queue``, leaving every message in place."""
        total = self._require(queue)
        if self._memory is not None:
            memory = self._memory
            messages = memory.call(lambda: memory.parked(queue))
            if progress is not None:
                for position in range(len(messages)):
                    progress(position + 1, total)
            return total, [parked for _, parked in messages][skip: skip + limit]
        channel = self._run(self._channel())
        shown: list[ParkedMessage] = []
        try:
            for _, parked in self._pass(channel, queue, total):
                if skip <= parked.position < skip + limit:
                    shown.append(parked)
                if progress is not None:
                    progress(parked.position + 1, total)
        finally:
            self._hand_back(channel)
        return total, shown

    def replay(
        self,
        queue: str,
        select: Callable[[ParkedMessage], bool],
        *,
        limit: int | None = None,
        progress: Progress | None = None,
    ) -> ReplayResult:
        """Send the selected messages of ``queue`` back to their consumer queues (confirmed), up to ``limit``."""
        total = self._require(queue)
        if self._memory is not None:
            return self._replay_in_memory(self._memory, queue, select, limit, progress, total)
        reader = self._run(self._channel())
        writer = self._run(self._channel(confirms=True))
        result = ReplayResult()
        try:
            for tag, parked in self._pass(reader, queue, total):
                result.scanned += 1
                if (limit is None or len(result.replayed) < limit) and select(parked):
                    problem = self._run(self._send_back(writer, parked))
                    if problem is None:
                        self._run(_ack(reader, tag))
                        result.replayed.append(parked.event_id or f"#{parked.position}")
                    else:
                        result.failed.append((parked.event_id or f"#{parked.position}", problem))
                        if writer.is_closed:
                            writer = self._run(self._channel(confirms=True))
                if progress is not None:
                    progress(result.scanned, total)
        finally:
            self._hand_back(reader)
            self._run(writer.close())
        return result

    @staticmethod
    def _replay_in_memory(memory: _InMemory, queue: str, select: Callable[[ParkedMessage], bool],
                          limit: int | None, progress: Progress | None, total: int) -> ReplayResult:
        result = ReplayResult()
        for stored, parked in memory.call(lambda: memory.parked(queue)):
            result.scanned += 1
            if (limit is None or len(result.replayed) < limit) and select(parked):
                problem = memory.call(lambda s=stored, p=parked: memory.send_back(queue, s, p))  # type: ignore[misc]
                if problem is None:
                    result.replayed.append(parked.event_id or f"#{parked.position}")
                else:
                    result.failed.append((parked.event_id or f"#{parked.position}", problem))
            if progress is not None:
                progress(result.scanned, total)
        return result

    async def _send_back(self, channel: Channel, parked: ParkedMessage) -> str | None:
        """Publish the replay copy; None when confirmed, else why not."""
        target = parked.original_queue
        if not target:
            return "no original queue recorded"
        properties = Properties(
            content_type=parked.content_type,
            delivery_mode=2,
            message_id=parked.event_id,
            message_type=parked.event_type,
            headers=replay_headers(parked),
        )
        batch = channel.publish([("", target, properties, parked.body)], mandatory=True)
        try:
            await asyncio.wait_for(asyncio.shield(batch.done), self._settings.confirm_timeout)
        except TimeoutError:
            await channel.close()  # a late confirm must not be taken for this copy's
            return f"no confirm within {self._settings.confirm_timeout:g}s"
        (error,) = batch.results
        if isinstance(error, MessageReturned):
            return f"queue {target!r} does not exist"
        if isinstance(error, MessageNacked):
            return f"the broker refused the copy for {target!r}"
        if error is not None:
            return f"{type(error).__name__}: {error}"
        return None

    def purge(self, queue: str) -> int:
        """Delete every message in ``queue``; returns how many there were."""
        if not is_dead_letter_queue(queue):
            raise ConfigurationError(f"{queue!r} is not a dead-letter queue (<queue>.dlq or {UNROUTABLE_QUEUE})")
        self._require(queue)
        if self._memory is not None:
            broker = self._memory.broker
            return self._memory.call(lambda: broker.purge(queue))

        async def purge() -> int:
            channel = await self._channel()
            try:
                return await channel.queue_purge(queue)
            finally:
                await channel.close()

        return self._run(purge())
