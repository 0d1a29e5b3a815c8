"""Confirmed publishing for the asyncio shell: every publish is confirmed, or it raises.

One connection and one confirm channel, shared by concurrent publishes. A batch is written in
one socket write and waited for with one future (``_amqp.ConfirmBatch``); the broker confirms
many delivery tags at once with ``multiple``. A single publish is a batch of one. Failure
modes, each tested in ``tests/faults/``:

- no queue bound (mandatory returned)         → ``UnroutableError`` (never reported as success)
- negative confirm                            → published again for up to ``reconnect_window``
  seconds (a quorum queue nacks while it elects a new leader after a cluster node was lost),
  then ``PublishNackedError``
- no confirm within ``confirm_timeout``       → ``PublishTimeoutError``; a stalled TCP
  connection can never make a publish hang forever
- the broker blocks publishing (memory/disk alarm) that long → ``PublishBlockedError``
- the connection drops before the confirm     → reconnect and publish again, for up to
  ``reconnect_window`` seconds, then ``PublishError``. Publishing again after a lost
  confirm can store the message twice; consumers deduplicate by event id (at-least-once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from ._amqp import Channel, Connection, MessageNacked, MessageReturned, Outgoing, Properties, PublishBlocked
from ._async_broker import (
    CONNECTION_ERRORS,
    apply,
    connect,
    declare_delay_topology,
    declare_queue,
    is_blocked,
)
from ._delay import DELIVER_EXCHANGE as _DELIVER
from ._delay import Binding, ExchangeSpec, delay_route, landing_queue, target_binding_key
from ._exceptions import (
    ConnectionFailedError,
    PublishBlockedError,
    PublishError,
    PublishNackedError,
    PublishTimeoutError,
    UnroutableError,
)
from ._outgoing import OutgoingMessage, delayed_headers
from ._retry import ReconnectWindow
from ._settings import BusSettings

__all__ = ["AsyncPublisher", "properties_of"]

log = logging.getLogger("eventbus")


def properties_of(message: OutgoingMessage, headers: dict[str, Any] | None = None) -> Properties:
    """The AMQP properties of an outgoing event (DESIGN §2: they mirror the CloudEvents headers)."""
    return Properties(
        content_type=message.content_type,
        delivery_mode=message.delivery_mode,
        message_id=message.message_id,
        message_type=message.event_type,
        timestamp=message.timestamp,
        app_id=message.app_id,
        headers=message.headers if headers is None else headers,
    )


def _what(properties: Properties) -> str:
    return f"{properties.message_type or 'message'} {properties.message_id or ''}".rstrip()


def _failure(item: Outgoing, error: BaseException) -> PublishError:
    """The SDK's error for one publish the broker returned or refused."""
    exchange, routing_key, properties, _ = item
    event_type, event_id = properties.message_type, properties.message_id
    if isinstance(error, MessageReturned):
        return UnroutableError(
            f"{_what(properties)} is unroutable: no queue is bound to exchange {exchange!r} "
            f"with routing key {routing_key!r}",
            event_type=event_type,
            event_id=event_id,
        )
    if isinstance(error, PublishBlocked):  # settings.when_blocked == "fail"
        return PublishBlockedError(f"{_what(properties)}: {error}", event_type=event_type, event_id=event_id)
    if isinstance(error, MessageNacked):
        return PublishNackedError(f"broker refused {_what(properties)}: {error}", event_type=event_type,
                                  event_id=event_id)
    return PublishError(f"publish of {_what(properties)} failed: {type(error).__name__}: {error}",
                        event_type=event_type, event_id=event_id)


class AsyncPublisher:
    """A confirm channel, reopened when it breaks, and the names already declared on its connection."""

    def __init__(self, settings: BusSettings) -> None:
        self._settings = settings
        self._connection: Connection | None = None
        self._channel: Channel | None = None
        self._declared: set[str] = set()
        self._lock = asyncio.Lock()
        self._ever_connected = False

    async def _ready(self) -> Channel:
        channel = self._channel
        if channel is not None and not channel.is_closed and not self._lock.locked():
            return channel
        # While a connection is being opened, callers queue on the lock (first come, first
        # served), so publishes leave in the order they were made, e.g. parked copies in the
        # order their deliveries arrived.
        async with self._lock:
            if self._channel is None or self._channel.is_closed:
                if self._connection is None or self._connection.is_closed:
                    self._declared.clear()
                    self._connection = await connect(self._settings, "publish")
                    self._ever_connected = True
                self._channel = await self._connection.channel(publisher_confirms=True)
            return self._channel

    async def _connection_ready(self) -> Connection:
        await self._ready()
        assert self._connection is not None
        return self._connection

    def _forget(self, broken: Connection | None = None) -> None:
        """Drop a broken connection; the next publish opens a new one. With ``broken``, only if
        that is still the current one (a concurrent batch may have reconnected already)."""
        if broken is not None and broken is not self._connection:
            return
        connection, self._connection, self._channel = self._connection, None, None
        self._declared.clear()
        if connection is not None and not connection.is_closed:
            task = asyncio.get_running_loop().create_task(connection.close())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    # -- declarations (cached per connection) --------------------------------------------------

    async def ensure_exchange(self, name: str) -> None:
        if not name or name in self._declared:
            return
        await apply(await self._connection_ready(), [ExchangeSpec(name)], [])
        self._declared.add(name)

    async def ensure_delays(self) -> None:
        if _DELIVER in self._declared:
            return
        await declare_delay_topology(await self._connection_ready())
        self._declared.add(_DELIVER)

    async def ensure_landing(self, exchange: str, routing_key: str) -> str:
        """The landing queue that hands delayed events to ``exchange`` with ``routing_key``."""
        spec_ = landing_queue(exchange, routing_key)
        if spec_.name not in self._declared:
            await self.ensure_delays()
            await self.ensure_exchange(exchange)
            connection = await self._connection_ready()
            await declare_queue(connection, spec_)
            await apply(connection, [], [Binding(_DELIVER, spec_.name, target_binding_key(spec_.name))])
            self._declared.add(spec_.name)
        return spec_.name

    # -- publishing ----------------------------------------------------------------------------

    async def publish_messages(self, messages: Sequence[OutgoingMessage], *, ticks: int | None, window: int) -> None:
        """Publish events (after ``ticks`` delay ticks, if given) with up to ``window`` unconfirmed.

        All are attempted; the first failure (in the order given) is raised after the rest
        have settled.
        """
        for outcome in await self.publish_outcomes(messages, ticks=ticks, window=window):
            if outcome is not None:
                raise outcome

    async def publish_outcomes(
        self, messages: Sequence[OutgoingMessage], *, ticks: int | None, window: int
    ) -> list[BaseException | None]:
        """Like ``publish_messages``, but one outcome per message (None: confirmed), never raising
        for a single message, for callers that settle each one (the outbox relay).

        The events go out in slices of a quarter window, each written in one socket write and
        confirmed as a whole, with up to four slices in flight.
        """
        items: list[Outgoing]
        if ticks is None:
            for exchange in sorted({m.exchange for m in messages}):
                await self.ensure_exchange(exchange)
            items = [(m.exchange, m.routing_key, properties_of(m), m.body) for m in messages]
        else:
            routes = {(m.exchange, m.routing_key) for m in messages}
            landings = {key: await self.ensure_landing(*key) for key in routes}
            items = []
            for m in messages:
                route = delay_route(ticks, landings[m.exchange, m.routing_key])
                headers = delayed_headers(m.headers, ticks)
                items.append((route.exchange, route.routing_key, properties_of(m, headers), m.body))
        if len(items) <= 1:
            return list(await self.send_batch(items))
        size = max(1, window // 4)
        slots = asyncio.Semaphore(max(1, window // size))
        slices = [items[i : i + size] for i in range(0, len(items), size)]

        async def one(part: list[Outgoing]) -> list[PublishError | None]:
            async with slots:
                return await self.send_batch(part)

        outcomes: list[BaseException | None] = []
        for part, result in zip(slices, await asyncio.gather(*map(one, slices), return_exceptions=True), strict=True):
            outcomes.extend([result] * len(part) if isinstance(result, BaseException) else result)
        return outcomes

    async def send_delayed(self, *, body: bytes, ticks: int, target: str, properties: Properties) -> None:
        """Publish so that queue ``target`` receives the message after ``ticks`` ticks."""
        await self.ensure_delays()
        route = delay_route(ticks, target)
        await self.send(body=body, exchange=route.exchange, routing_key=route.routing_key, properties=properties)

    async def send(self, *, body: bytes, exchange: str, routing_key: str, properties: Properties) -> None:
        """Publish with ``mandatory`` and wait for the confirm; raise a ``PublishError`` otherwise."""
        (error,) = await self.send_batch([(exchange, routing_key, properties, body)])
        if error is not None:
            raise error

    async def send_batch(self, items: Sequence[Outgoing]) -> list[PublishError | None]:
        """Publish ``items`` (mandatory, confirmed) in one write; one outcome per item, in order.

        Items whose confirm was lost with the connection are published again on a new one for
        up to ``reconnect_window`` seconds (at-least-once: the broker may then hold two copies,
        which consumers drop by event id); so are nacked items, on the same connection (a nack
        is transient on a cluster: a quorum queue whose leader was lost nacks until another
        node leads it). ``ConnectionFailedError`` is raised at once when no broker was ever
        reached.
        """
        outcomes: list[PublishError | None] = [None] * len(items)
        todo = list(range(len(items)))
        window: ReconnectWindow | None = None
        while todo:
            lost: list[int] = []
            nacked: dict[int, BaseException] = {}
            failure: BaseException | None = None
            connection: Connection | None = None
            try:
                channel = await self._ready()
                connection = channel.connection
                await connection.writable()
                batch = channel.publish([items[i] for i in todo])
            except ConnectionFailedError:
                if not self._ever_connected:
                    raise  # never reached a broker: say so at once
                window = window or ReconnectWindow(self._settings.reconnect_window, time.monotonic)
                wait = window.next_wait()
                if wait is None:
                    raise
                await asyncio.sleep(wait)
                continue
            except CONNECTION_ERRORS as exc:
                lost, failure = todo, exc
            else:
                try:
                    async with asyncio.timeout(self._settings.confirm_timeout):
                        await batch.done
                except TimeoutError:
                    self._timed_out(connection, items, todo, batch.unsettled(), outcomes)
                for position, index in enumerate(todo):
                    result = batch.results[position]
                    if result is None or outcomes[index] is not None:
                        continue
                    if isinstance(result, MessageReturned):
                        outcomes[index] = _failure(items[index], result)
                    elif isinstance(result, MessageNacked):
                        nacked[index] = result
                        failure = failure or result
                    elif isinstance(result, BaseException):
                        lost.append(index)
                        failure = result
            if not lost and not nacked:
                return outcomes
            assert failure is not None
            if lost:
                self._forget(connection)
            window = window or ReconnectWindow(self._settings.reconnect_window, time.monotonic)
            wait = window.next_wait()
            retry = sorted([*lost, *nacked])
            if wait is None:
                for index in retry:
                    outcomes[index] = _failure(items[index], nacked.get(index, failure))
                return outcomes
            log.info("publish of %d message(s) hit %s; %s", len(retry), type(failure).__name__,
                     "reconnecting" if lost else "publishing them again")
            await asyncio.sleep(wait)
            todo = retry
        return outcomes

    def _timed_out(self, connection: Connection, items: Sequence[Outgoing], todo: list[int], unsettled: list[int],
                   outcomes: list[PublishError | None]) -> None:
        """No confirm within ``confirm_timeout``: those publishes may or may not be stored."""
        blocked = is_blocked(connection)
        self._forget(connection)
        error = PublishBlockedError if blocked else PublishTimeoutError
        cause = (
            "the broker blocked publishing (memory or disk alarm) all that time"
            if blocked
            else "it may or may not be stored"
        )
        for position in unsettled:
            index = todo[position]
            properties = items[index][2]
            outcomes[index] = error(
                f"no confirm for {_what(properties)} within {self._settings.confirm_timeout:g}s; {cause}",
                event_type=properties.message_type,
                event_id=properties.message_id,
            )

    async def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        self._declared.clear()
        if connection is not None and not connection.is_closed:
            with contextlib.suppress(*CONNECTION_ERRORS):
                await connection.close()
