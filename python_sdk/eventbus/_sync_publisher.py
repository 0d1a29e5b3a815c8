"""Confirmed publishing for the blocking shell (pika): confirmed, or it raises.

The same contract as ``AsyncPublisher``: unroutable → ``UnroutableError``, nack →
``PublishNackedError``, a blocked connection for longer than ``confirm_timeout`` →
``PublishBlockedError`` (pika's ``blocked_connection_timeout``), a dropped connection →
reconnect and publish again within ``reconnect_window``, then ``PublishError``. pika has no
confirm timeout of its own; a silent peer is detected by the heartbeat, which bounds the wait.

pika connections are not thread-safe and handlers of ``SyncEventBus`` run in threads, so one
lock guards the connection; ``pump()`` lets the consumer's I/O loop keep its heartbeats going.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from ._delay import DELIVER_EXCHANGE, Binding, ExchangeSpec, delay_route, landing_queue, target_binding_key
from ._exceptions import (
    ConnectionFailedError,
    PublishBlockedError,
    PublishError,
    PublishNackedError,
    UnroutableError,
)
from ._retry import ReconnectWindow
from ._settings import BusSettings
from ._sync_broker import CONNECTION_ERRORS, apply, connect, declare_delay_topology, declare_queue

__all__ = ["SyncPublisher"]

log = logging.getLogger("eventbus")


class SyncPublisher:
    def __init__(self, settings: BusSettings) -> None:
        self._settings = settings
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._declared: set[str] = set()
        self._ever_connected = False
        self.lock = threading.RLock()

    def _connection_ready(self) -> pika.BlockingConnection:
        if self._connection is None or not self._connection.is_open:
            self._declared.clear()
            self._channel = None
            self._connection = connect(self._settings, "publish")
            self._ever_connected = True
        return self._connection

    def _ready(self) -> BlockingChannel:
        connection = self._connection_ready()
        if self._channel is None or not self._channel.is_open:
            self._channel = connection.channel()
            self._channel.confirm_delivery()
        return self._channel

    def _forget(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        self._declared.clear()
        if connection is not None and connection.is_open:
            with contextlib.suppress(CONNECTION_ERRORS):
                connection.close()

    def pump(self) -> None:
        """Process heartbeats and pending frames, if no other thread is publishing right now."""
        if self._connection is None or not self.lock.acquire(blocking=False):
            return
        try:
            if self._connection.is_open:
                self._connection.process_data_events(0)
        except CONNECTION_ERRORS:
            self._forget()
        finally:
            self.lock.release()

    # -- declarations --------------------------------------------------------------------------

    def ensure_exchange(self, name: str) -> None:
        with self.lock:
            if name and name not in self._declared:
                apply(self._connection_ready(), [ExchangeSpec(name)], [])
                self._declared.add(name)

    def ensure_delays(self) -> None:
        with self.lock:
            if DELIVER_EXCHANGE not in self._declared:
                declare_delay_topology(self._connection_ready())
                self._declared.add(DELIVER_EXCHANGE)

    def ensure_landing(self, exchange: str, routing_key: str) -> str:
        spec = landing_queue(exchange, routing_key)
        with self.lock:
            if spec.name not in self._declared:
                self.ensure_delays()
                self.ensure_exchange(exchange)
                connection = self._connection_ready()
                declare_queue(connection, spec)
                apply(connection, [], [Binding(DELIVER_EXCHANGE, spec.name, target_binding_key(spec.name))])
                self._declared.add(spec.name)
        return spec.name

    # -- publishing ----------------------------------------------------------------------------

    def send_delayed(
        self, *, body: bytes, ticks: int, target: str, properties: pika.BasicProperties,
        event_type: str | None, event_id: str | None,
    ) -> None:
        self.ensure_delays()
        route = delay_route(ticks, target)
        self.send(body=body, exchange=route.exchange, routing_key=route.routing_key, properties=properties,
                  event_type=event_type, event_id=event_id)

    def send(
        self, *, body: bytes, exchange: str, routing_key: str, properties: pika.BasicProperties,
        event_type: str | None, event_id: str | None,
    ) -> None:
        what = f"{event_type or 'message'} {event_id or ''}".rstrip()
        window = ReconnectWindow(self._settings.reconnect_window, time.monotonic)
        with self.lock:
            while True:
                try:
                    self._ready().basic_publish(exchange, routing_key, body, properties, mandatory=True)
                    return
                except pika.exceptions.UnroutableError:
                    raise UnroutableError(
                        f"{what} is unroutable: no queue is bound to exchange {exchange!r} "
                        f"with routing key {routing_key!r}",
                        event_type=event_type, event_id=event_id,
                    ) from None
                except pika.exceptions.NackError:
                    raise PublishNackedError(
                        f"broker refused {what}", event_type=event_type, event_id=event_id
                    ) from None
                except pika.exceptions.ConnectionBlockedTimeout:
                    self._forget()
                    raise PublishBlockedError(
                        f"the broker blocked publishing (memory or disk alarm) for more than "
                        f"{self._settings.confirm_timeout:g}s; {what} was not confirmed",
                        event_type=event_type, event_id=event_id,
                    ) from None
                except ConnectionFailedError:
                    if not self._ever_connected:
                        raise  # never reached a broker: say so at once
                    wait = window.next_wait()
                    if wait is None:
                        raise
                except CONNECTION_ERRORS as exc:
                    self._forget()
                    wait = window.next_wait()
                    if wait is None:
                        raise PublishError(
                            f"publish of {what} failed: {type(exc).__name__}: {exc!r}",
                            event_type=event_type, event_id=event_id,
                        ) from exc
                    log.info("publish of %s hit %s; reconnecting", what, type(exc).__name__)
                time.sleep(wait)

    def close(self) -> None:
        with self.lock:
            self._forget()
