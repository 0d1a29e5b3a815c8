"""Looking into dead-letter queues and sending messages back, without losing any (pika).

Reading is non-destructive: one pass takes every message the queue held when the pass began,
unacked, and hands back whatever is not replayed with a single ``nack(requeue)`` at the end.
A full pass is needed because quorum queues put returned messages at the *back*: handing
back only the first page would rotate the queue. After a full pass the order is what it
was (messages parked meanwhile end up in front of the returned ones).

Replay publishes a copy to the message's original consumer queue through the default exchange,
with ``mandatory`` and a publisher confirm, and acks (removes) the DLQ message only after the
confirm. A failed publish leaves the message in the DLQ.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from ._delay import UNROUTABLE_QUEUE
from ._exceptions import ConfigurationError, TopologyError
from ._parked import ParkedMessage, describe_parked, replay_headers
from ._settings import BusSettings
from ._sync_broker import CONNECTION_ERRORS, connect

__all__ = ["DeadLetters", "ReplayResult", "is_dead_letter_queue"]

Progress = Callable[[int, int], None]


def is_dead_letter_queue(name: str) -> bool:
    return name.endswith(".dlq") or name == UNROUTABLE_QUEUE


@dataclass
class ReplayResult:
    """What a replay did: ids sent back, and why the others that were selected stayed."""

    scanned: int = 0
    replayed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


class DeadLetters:
    """Inspect, replay and purge dead-letter queues. ``with DeadLetters(settings) as dlq: …``"""

    def __init__(self, settings: BusSettings) -> None:
        self._settings = settings
        self._connection: pika.BlockingConnection | None = None

    def __enter__(self) -> DeadLetters:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _open(self) -> pika.BlockingConnection:
        if self._connection is None or not self._connection.is_open:
            self._connection = connect(self._settings, "dlq")
        return self._connection

    def close(self) -> None:
        if self._connection is not None and self._connection.is_open:
            with contextlib.suppress(*CONNECTION_ERRORS):
                self._connection.close()
        self._connection = None

    def depth(self, queue: str) -> int | None:
        """Messages in ``queue``, or None when it does not exist."""
        channel = self._open().channel()
        try:
            return channel.queue_declare(queue, passive=True).method.message_count
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == 404:
                return None
            raise TopologyError(f"{exc.reply_code} {exc.reply_text}") from None
        finally:
            if channel.is_open:
                channel.close()

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

    def _pass(self, channel: BlockingChannel, queue: str, total: int) -> Iterator[tuple[int, ParkedMessage]]:
        """The first ``total`` messages of the queue in order, unacked; yields (delivery tag, message).

        ``basic.get`` one by one rather than a consumer: a consumer's prefetch buffer would hand
        messages back out of order when it is cancelled.
        """
        for position in range(total):
            method, properties, body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                return  # fewer than announced: someone else took some meanwhile
            parked = describe_parked(
                properties.headers, queue=queue, position=position, message_id=properties.message_id,
                event_type=properties.type, content_type=properties.content_type, body=body,
            )
            yield method.delivery_tag, parked

    @staticmethod
    def _hand_back(channel: BlockingChannel) -> None:
        """Everything still unacked goes back, in the order it was taken."""
        if channel.is_open:
            channel.basic_nack(0, multiple=True, requeue=True)
            channel.close()

    def peek(self, queue: str, *, skip: int = 0, limit: int = 20,
             progress: Progress | None = None) -> tuple[int, list[ParkedMessage]]:
        """(depth, messages ``skip`` … ``skip + limit``) of ``queue``, leaving every message in place."""
        total = self._require(queue)
        channel = self._open().channel()
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
        connection = self._open()
        reader = connection.channel()
        writer = connection.channel()
        writer.confirm_delivery()
        result = ReplayResult()
        try:
            for tag, parked in self._pass(reader, queue, total):
                result.scanned += 1
                if (limit is None or len(result.replayed) < limit) and select(parked):
                    problem = self._send_back(writer, parked)
                    if problem is None:
                        reader.basic_ack(tag)
                        result.replayed.append(parked.event_id or f"#{parked.position}")
                    else:
                        result.failed.append((parked.event_id or f"#{parked.position}", problem))
                        if not writer.is_open:
                            writer = connection.channel()
                            writer.confirm_delivery()
                if progress is not None:
                    progress(result.scanned, total)
        finally:
            self._hand_back(reader)
            if writer.is_open:
                writer.close()
        return result

    @staticmethod
    def _send_back(channel: BlockingChannel, parked: ParkedMessage) -> str | None:
        """Publish the replay copy; None when confirmed, else why not."""
        target = parked.original_queue
        if not target:
            return "no original queue recorded"
        properties = pika.BasicProperties(
            content_type=parked.content_type,
            delivery_mode=2,
            message_id=parked.event_id,
            type=parked.event_type,
            headers=replay_headers(parked),
        )
        try:
            channel.basic_publish("", target, parked.body, properties, mandatory=True)
        except pika.exceptions.UnroutableError:
            return f"queue {target!r} does not exist"
        except pika.exceptions.NackError:
            return f"the broker refused the copy for {target!r}"
        except pika.exceptions.AMQPChannelError as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    def purge(self, queue: str) -> int:
        """Delete every message in ``queue``; returns how many there were."""
        if not is_dead_letter_queue(queue):
            raise ConfigurationError(f"{queue!r} is not a dead-letter queue (<queue>.dlq or {UNROUTABLE_QUEUE})")
        self._require(queue)
        channel = self._open().channel()
        try:
            return channel.queue_purge(queue).method.message_count
        finally:
            if channel.is_open:
                channel.close()
