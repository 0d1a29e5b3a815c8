"""Confirmed publishing for the asyncio shell: every publish is confirmed, or it raises.

One connection and one confirm channel, shared by concurrent publishes (the broker confirms
them in batches with ``multiple``). Failure modes, each tested in ``tests/faults/``:

- no queue bound (mandatory returned)         → ``UnroutableError`` (never reported as success)
- negative confirm                            → ``PublishNackedError``
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

import aiormq
from aiormq.abc import AbstractChannel, AbstractConnection
from pamqp import commands as spec

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
from ._retry import ReconnectWindow
from ._settings import BusSettings

__all__ = ["AsyncPublisher"]

log = logging.getLogger("eventbus")


class AsyncPublisher:
    """A confirm channel, reopened when it breaks, and the names already declared on its connection."""

    def __init__(self, settings: BusSettings) -> None:
        self._settings = settings
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._declared: set[str] = set()
        self._lock = asyncio.Lock()
        self._ever_connected = False

    async def _ready(self) -> AbstractChannel:
        channel = self._channel
        if channel is not None and not channel.is_closed:
            return channel
        async with self._lock:
            if self._channel is None or self._channel.is_closed:
                if self._connection is None or self._connection.is_closed:
                    self._declared.clear()
                    self._connection = await connect(self._settings, "publish")
                    self._ever_connected = True
                try:
                    self._channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
                except CONNECTION_ERRORS:
                    raise
                except Exception as exc:
                    # aiormq re-raises a closing connection's reason as it was given, at times a bare
                    # Exception: treat it as the connection failure it is, so send() reconnects or raises
                    # a PublishError instead of letting an anonymous error out.
                    raise ConnectionError(f"could not open a publish channel: {exc!r}") from exc
            return self._channel

    async def _connection_ready(self) -> AbstractConnection:
        await self._ready()
        assert self._connection is not None
        return self._connection

    def _forget(self) -> None:
        """Drop a broken connection; the next publish opens a new one."""
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

    async def send_delayed(
        self,
        *,
        body: bytes,
        ticks: int,
        target: str,
        properties: spec.Basic.Properties,
        event_type: str | None,
        event_id: str | None,
    ) -> None:
        """Publish so that queue ``target`` receives the message after ``ticks`` ticks."""
        await self.ensure_delays()
        route = delay_route(ticks, target)
        await self.send(
            body=body,
            exchange=route.exchange,
            routing_key=route.routing_key,
            properties=properties,
            event_type=event_type,
            event_id=event_id,
        )

    async def send(
        self,
        *,
        body: bytes,
        exchange: str,
        routing_key: str,
        properties: spec.Basic.Properties,
        event_type: str | None,
        event_id: str | None,
    ) -> None:
        """Publish with ``mandatory`` and wait for the confirm; raise a ``PublishError`` otherwise."""
        what = f"{event_type or 'message'} {event_id or ''}".rstrip()
        window: ReconnectWindow | None = None
        while True:
            try:
                channel = await self._ready()
                confirmation = await channel.basic_publish(
                    body,
                    exchange=exchange,
                    routing_key=routing_key,
                    properties=properties,
                    mandatory=True,
                    timeout=self._settings.confirm_timeout,
                    wait=False,  # the confirm is what counts; waiting for each socket write too halves the rate
                )
            except aiormq.exceptions.PublishError:
                raise UnroutableError(
                    f"{what} is unroutable: no queue is bound to exchange {exchange!r} "
                    f"with routing key {routing_key!r}",
                    event_type=event_type,
                    event_id=event_id,
                ) from None
            except aiormq.exceptions.DeliveryError as exc:
                raise PublishNackedError(
                    f"broker refused {what}: {exc.frame!r}", event_type=event_type, event_id=event_id
                ) from None
            except TimeoutError:
                blocked = is_blocked(self._connection)
                self._forget()
                error = PublishBlockedError if blocked else PublishTimeoutError
                cause = (
                    "the broker blocked publishing (memory or disk alarm) all that time"
                    if blocked
                    else "it may or may not be stored"
                )
                raise error(
                    f"no confirm for {what} within {self._settings.confirm_timeout:g}s; {cause}",
                    event_type=event_type,
                    event_id=event_id,
                ) from None
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
                self._forget()
                window = window or ReconnectWindow(self._settings.reconnect_window, time.monotonic)
                wait = window.next_wait()
                if wait is None:
                    raise PublishError(
                        f"publish of {what} failed: {type(exc).__name__}: {exc}",
                        event_type=event_type,
                        event_id=event_id,
                    ) from exc
                log.info("publish of %s hit %s; reconnecting", what, type(exc).__name__)
                await asyncio.sleep(wait)
                continue
            if confirmation is not None and not isinstance(confirmation, spec.Basic.Ack):
                raise PublishNackedError(
                    f"broker did not ack {what}: {confirmation!r}", event_type=event_type, event_id=event_id
                )
            return

    async def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        self._declared.clear()
        if connection is not None and not connection.is_closed:
            with contextlib.suppress(*CONNECTION_ERRORS):
                await connection.close()
