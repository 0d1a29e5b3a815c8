"""One AMQP channel: declarations (RPC), confirmed publishing, consuming and settling.

Everything here runs inside the event loop thread. Publishing assigns delivery tags and writes
the frames in one synchronous step, so no lock is needed around it; confirms are matched to
tags by a deque in tag order (the broker confirms in batches with ``multiple``) and settle a
``ConfirmBatch``, one future per batch however many messages it holds. Deliveries are handed to
the consumer's callback straight from ``data_received``: no task, no queue, no future per
message; the callback decides how to run the handler.

Publishing while the broker holds publishers back (``connection.blocked`` by a memory or disk
alarm, or ``channel.flow`` off) follows the connection's ``when_blocked``: ``"wait"`` keeps the
frames here and writes them when the broker lets go (the caller's confirm timeout bounds the
wait), ``"fail"`` settles the publishes at once with ``PublishBlocked`` and writes nothing.
RabbitMQ says ``connection.blocked`` only once a publish reaches it during the alarm, so the
publishes already sent then wait for their confirms (``"wait"``) or fail with ``PublishBlocked``
saying they may still be stored when the alarm clears (``"fail"``). Deliveries, acks and
declarations are never held.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pamqp import commands as spec
from pamqp.base import Frame as MethodFrame

from ._codec import Message, Properties, encode_ack, encode_method, encode_nack, encode_publish
from ._errors import AMQPError, ChannelClosedError, MessageNacked, MessageReturned, PublishBlocked

if TYPE_CHECKING:
    from ._connection import Connection

__all__ = ["Channel", "ConfirmBatch", "Outgoing"]

Outgoing = tuple[str, str, Properties, bytes]
"""``(exchange, routing_key, properties, body)`` of one publish."""

_UNSET: Any = object()


class ConfirmBatch:
    """The fate of a batch of publishes: ``results[i]`` is None (confirmed) or the exception.

    ``done`` resolves when the broker has answered for every message, or the channel died.
    """

    __slots__ = ("done", "remaining", "results")

    def __init__(self, size: int, loop: asyncio.AbstractEventLoop) -> None:
        self.results: list[Any] = [_UNSET] * size
        self.remaining = size
        self.done: asyncio.Future[None] = loop.create_future()
        if size == 0:
            self.done.set_result(None)

    def _decide(self, index: int, error: BaseException | None) -> None:
        if self.results[index] is _UNSET:
            self.results[index] = error

    def _settle(self, index: int, error: BaseException | None) -> None:
        self._decide(index, error)
        self.remaining -= 1
        if self.remaining == 0 and not self.done.done():
            self.done.set_result(None)

    def unsettled(self) -> list[int]:
        """Indexes the broker has not answered for yet (after a timeout, say)."""
        return [i for i, r in enumerate(self.results) if r is _UNSET]


class Channel:
    """An open channel of a ``Connection``; see the module docstring."""

    def __init__(self, connection: Connection, number: int) -> None:
        self.connection = connection
        self.number = number
        loop = connection.loop
        self.closing: asyncio.Future[None] = loop.create_future()
        self.close_reason: BaseException | None = None
        self.confirming = False
        self.on_cancel: Callable[[str], None] | None = None
        self._consumers: dict[str, Callable[[Message], None]] = {}
        self._rpc_lock = asyncio.Lock()
        self._rpc_waiter: asyncio.Future[Any] | None = None
        self._next_tag = 0
        self._unconfirmed: deque[int] = deque()
        self._pending: dict[int, tuple[ConfirmBatch, int, str | None]] = {}
        self.flow_active = True
        self._held: list[bytes] = []

    @property
    def is_closed(self) -> bool:
        return self.closing.done()

    def __repr__(self) -> str:
        return f"<Channel {self.number} of {self.connection!r}{' closed' if self.is_closed else ''}>"

    # -- requests and their replies ---------------------------------------------------------

    async def rpc(self, method: MethodFrame) -> Any:
        """Send a synchronous method and wait for its reply (one at a time per channel); the reply
        to ``basic.get`` is the fetched ``Message`` or ``basic.get-empty``."""
        async with self._rpc_lock:
            if self.is_closed:
                raise self._closed_error()
            waiter = self._rpc_waiter = self.connection.loop.create_future()
            self.connection.write(encode_method(self.number, method))
            try:
                return await waiter
            finally:
                self._rpc_waiter = None

    def _closed_error(self) -> BaseException:
        reason = self.close_reason
        if isinstance(reason, AMQPError | ConnectionError):
            return reason
        return ChannelClosedError(f"channel {self.number} is closed")

    async def open(self) -> None:
        await self.rpc(spec.Channel.Open())

    async def confirm_select(self) -> None:
        await self.rpc(spec.Confirm.Select())
        self.confirming = True

    async def basic_qos(self, prefetch_count: int) -> None:
        await self.rpc(spec.Basic.Qos(prefetch_count=prefetch_count))

    async def exchange_declare(
        self, exchange: str, exchange_type: str = "topic", *, durable: bool = True,
        arguments: dict[str, Any] | None = None,
    ) -> None:
        await self.rpc(spec.Exchange.Declare(exchange=exchange, exchange_type=exchange_type, durable=durable,
                                             arguments=arguments))

    async def exchange_bind(self, destination: str, source: str, routing_key: str) -> None:
        await self.rpc(spec.Exchange.Bind(destination=destination, source=source, routing_key=routing_key))

    async def queue_declare(
        self, queue: str, *, durable: bool = True, exclusive: bool = False, auto_delete: bool = False,
        passive: bool = False, arguments: dict[str, Any] | None = None,
    ) -> spec.Queue.DeclareOk:
        reply = await self.rpc(spec.Queue.Declare(queue=queue, durable=durable, exclusive=exclusive,
                                                  auto_delete=auto_delete, passive=passive, arguments=arguments))
        assert isinstance(reply, spec.Queue.DeclareOk)
        return reply

    async def queue_bind(self, queue: str, exchange: str, routing_key: str) -> None:
        await self.rpc(spec.Queue.Bind(queue=queue, exchange=exchange, routing_key=routing_key))

    async def queue_unbind(self, queue: str, exchange: str, routing_key: str) -> None:
        await self.rpc(spec.Queue.Unbind(queue=queue, exchange=exchange, routing_key=routing_key))

    async def queue_delete(self, queue: str, *, if_unused: bool = False, if_empty: bool = False) -> int:
        """Delete ``queue``; returns how many messages it held."""
        reply = await self.rpc(spec.Queue.Delete(queue=queue, if_unused=if_unused, if_empty=if_empty))
        assert isinstance(reply, spec.Queue.DeleteOk)
        return reply.message_count or 0

    async def queue_purge(self, queue: str) -> int:
        """Remove every ready message of ``queue``; returns how many there were."""
        reply = await self.rpc(spec.Queue.Purge(queue=queue))
        assert isinstance(reply, spec.Queue.PurgeOk)
        return reply.message_count or 0

    async def basic_get(self, queue: str, *, no_ack: bool = False) -> Message | None:
        """Fetch one message of ``queue`` (``basic.get``), or None when it is empty.

        The message's ``message_count`` is how many the queue still held; unless ``no_ack``, it
        stays unacked until ``basic_ack``/``basic_nack`` with its ``delivery_tag``.
        """
        reply = await self.rpc(spec.Basic.Get(queue=queue, no_ack=no_ack))
        if isinstance(reply, Message):
            return reply
        assert isinstance(reply, spec.Basic.GetEmpty)
        return None

    async def basic_consume(self, queue: str, callback: Callable[[Message], None], *, no_ack: bool = False,
                            exclusive: bool = False) -> str:
        """Consume ``queue``; ``callback(message)`` runs inside ``data_received`` for each delivery."""
        # The tag is ours, so the callback is in place before the first delivery, which can arrive
        # in the same read as the broker's consume-ok.
        tag = f"{self.connection.name or 'eventbus'}.{self.number}.{uuid.uuid4().hex[:12]}"
        self._consumers[tag] = callback
        try:
            await self.rpc(spec.Basic.Consume(queue=queue, consumer_tag=tag, no_ack=no_ack, exclusive=exclusive))
        except BaseException:
            self._consumers.pop(tag, None)
            raise
        return tag

    async def basic_cancel(self, consumer_tag: str) -> None:
        await self.rpc(spec.Basic.Cancel(consumer_tag=consumer_tag))
        self._consumers.pop(consumer_tag, None)

    # -- settling deliveries (no reply, nothing to wait for) ----------------------------------

    def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        if self.is_closed:
            raise self._closed_error()
        self.connection.write(encode_ack(self.number, delivery_tag, multiple))

    def ack_many(self, frames: Sequence[tuple[int, bool]]) -> None:
        """Several ``(delivery_tag, multiple)`` acks in one write."""
        if self.is_closed:
            raise self._closed_error()
        number = self.number
        self.connection.write(b"".join(encode_ack(number, tag, multiple) for tag, multiple in frames))

    def basic_nack(self, delivery_tag: int, multiple: bool = False, requeue: bool = True) -> None:
        if self.is_closed:
            raise self._closed_error()
        self.connection.write(encode_nack(self.number, delivery_tag, multiple, requeue))

    # -- publishing ---------------------------------------------------------------------------

    def publish(self, messages: Sequence[Outgoing], *, mandatory: bool = True) -> ConfirmBatch:
        """Write every message in one go; the batch settles as the broker confirms them.

        On a channel without confirms the batch is settled at once (the broker says nothing).
        """
        if self.is_closed:
            raise self._closed_error()
        connection = self.connection
        batch = ConfirmBatch(len(messages), connection.loop)
        held = connection.blocked or not self.flow_active or self._held
        if held and connection.when_blocked == "fail":
            error = PublishBlocked(f"not sent: {self._held_because()}")
            for index in range(len(messages)):
                batch._settle(index, error)
            return batch
        number, frame_max = self.number, connection.frame_max
        frames = [
            encode_publish(number, exchange, routing_key, mandatory, properties, body, frame_max)
            for exchange, routing_key, properties, body in messages
        ]
        if held:
            self._held.append(b"".join(frames))  # written by ``release`` when the broker lets go
        else:
            connection.write(b"".join(frames))
        if not self.confirming:
            for index in range(len(messages)):
                batch._settle(index, None)
            return batch
        tag = self._next_tag
        pending, unconfirmed = self._pending, self._unconfirmed
        for index, message in enumerate(messages):
            tag += 1
            pending[tag] = (batch, index, message[2].message_id)
            unconfirmed.append(tag)
        self._next_tag = tag
        return batch

    def _held_because(self) -> str:
        if self.connection.blocked:
            return f"the broker blocks publishing on this connection ({self.connection.blocked_reason or 'an alarm'})"
        return f"the broker paused publishing on channel {self.number} (channel.flow)"

    def refuse_unconfirmed(self) -> None:
        """``when_blocked="fail"``: the publishes waiting for confirms fail now; a late confirm is ignored."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        error = PublishBlocked(f"{self._held_because()}; it was sent before the broker said so and may still "
                               "be stored when the alarm clears")
        for batch, index, _ in pending.values():
            batch._settle(index, error)

    def release(self) -> None:
        """Write the publishes held while blocked or paused, once neither holds any more."""
        if self._held and self.flow_active and not self.connection.blocked and not self.is_closed:
            held, self._held = self._held, []
            self.connection.write(b"".join(held))

    # -- frames from the broker (called by the connection) -------------------------------------

    def _on_confirm(self, delivery_tag: int, multiple: bool, ack: bool) -> None:
        pending = self._pending
        error = None if ack else MessageNacked(f"the broker nacked delivery tag {delivery_tag}")
        if multiple:
            unconfirmed = self._unconfirmed
            while unconfirmed and unconfirmed[0] <= delivery_tag:
                entry = pending.pop(unconfirmed.popleft(), None)
                if entry is not None:
                    entry[0]._settle(entry[1], error)
        else:
            entry = pending.pop(delivery_tag, None)
            if entry is not None:
                entry[0]._settle(entry[1], error)
            # Confirmed one by one, the oldest tags leave the deque here (a broker that never
            # sends ``multiple`` must not make it grow without end).
            unconfirmed = self._unconfirmed
            while unconfirmed and unconfirmed[0] not in pending:
                unconfirmed.popleft()

    def _on_message(self, message: Message) -> None:
        message.channel = self
        if message.consumer_tag:
            callback = self._consumers.get(message.consumer_tag)
            if callback is not None:
                callback(message)
            return
        if message.message_count >= 0:  # basic.get-ok with its content: the reply to ``basic_get``
            waiter = self._rpc_waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(message)
            return
        self._on_return(message)

    def _on_return(self, message: Message) -> None:
        """Fail the oldest unconfirmed publish with the returned message's id; its ack follows."""
        message_id = message.properties.message_id
        error = MessageReturned(message.exchange, message.routing_key, message.reply_code, message.reply_text)
        for tag in self._unconfirmed:
            entry = self._pending.get(tag)
            if entry is not None and entry[2] == message_id and entry[0].results[entry[1]] is _UNSET:
                entry[0]._decide(entry[1], error)
                return

    def _on_method(self, method: MethodFrame) -> None:
        if isinstance(method, spec.Channel.Close):
            self.connection.write(encode_method(self.number, spec.Channel.CloseOk()))
            reason = method.reply_text or "channel closed by the broker"
            self._closed(ChannelClosedError(reason, method.reply_code or 0))
            return
        if isinstance(method, spec.Basic.Cancel):
            tag = method.consumer_tag or ""
            self._consumers.pop(tag, None)
            if not method.nowait:
                self.connection.write(encode_method(self.number, spec.Basic.CancelOk(tag)))
            if self.on_cancel is not None:
                self.on_cancel(tag)
            return
        if isinstance(method, spec.Channel.Flow):
            self.flow_active = bool(method.active)
            self.connection.write(encode_method(self.number, spec.Channel.FlowOk(active=method.active)))
            self.release()
            return
        waiter = self._rpc_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(method)
        if isinstance(method, spec.Channel.CloseOk):
            self._closed(ChannelClosedError(f"channel {self.number} was closed"))

    def _closed(self, reason: BaseException) -> None:
        """The channel is gone (closed by either side, or with its connection): fail what waits."""
        if self.closing.done():
            return
        self.close_reason = reason
        self._held.clear()  # never written: their batches fail below with the reason
        self.connection._release(self)
        waiter = self._rpc_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(reason)
        pending, self._pending = self._pending, {}
        self._unconfirmed.clear()
        for batch, index, _ in pending.values():
            batch._settle(index, reason)
        self._consumers.clear()
        self.closing.set_result(None)

    async def close(self) -> None:
        """Close the channel politely; a no-op when it is already closed."""
        if self.is_closed:
            return
        with contextlib.suppress(AMQPError, ConnectionError):
            await self.rpc(spec.Channel.Close(reply_code=200, reply_text="Normal shutdown", class_id=0, method_id=0))
        self._closed(ChannelClosedError(f"channel {self.number} was closed"))
