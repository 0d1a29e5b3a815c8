"""Connections and declarations for the asyncio shell, on the SDK's lean AMQP client (``_amqp``).

Declarations run on a short-lived channel of their own: RabbitMQ closes the channel that
sent a refused declaration, and the publishing or consuming channel must not die of it.
Arguments come from the sans-I/O modules (``_topology.py``, ``_delay.py``); a refusal
becomes a ``TopologyMismatchError`` that names the argument and both values.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable

from .._connect_errors import connection_failed
from .._delay import Binding, ExchangeSpec, delay_topology
from .._exceptions import TopologyError
from .._settings import BusSettings, note_unreachable
from .._topology import LEGACY_QUEUE_WARNING, QueueSpec, describe_mismatch, without_safety_net
from ._amqp import AMQPError, Channel, ChannelClosedError, Connection
from ._amqp import connect as amqp_connect

__all__ = ["connect", "declare_delay_topology", "declare_exchange", "declare_queue", "declaring_channel", "is_blocked"]

log = logging.getLogger("eventbus")

CONNECTION_ERRORS = (AMQPError, ConnectionError, OSError, RuntimeError, asyncio.TimeoutError)
_PRECONDITION_FAILED = 406


async def connect(settings: BusSettings, role: str) -> Connection:
    """A connection to any broker URL that answers (``BusSettings.connect_order``), or ``ConnectionFailedError``."""
    errors: list[tuple[str, BaseException]] = []
    name = f"{settings.service}:{role}"
    properties = {"connection_name": name, **settings.client_properties}
    for url in settings.connect_order():
        try:
            async with asyncio.timeout(settings.connect_timeout):
                return await amqp_connect(url, heartbeat=settings.heartbeat, client_properties=properties, name=name,
                                          when_blocked=settings.when_blocked)
        except (*CONNECTION_ERRORS, ValueError) as exc:
            note_unreachable(url)
            errors.append((url, exc))
    raise connection_failed(errors)


def is_blocked(connection: Connection | None) -> bool:
    """True while the broker blocks this connection (memory or disk alarm)."""
    return connection is not None and connection.blocked


@contextlib.asynccontextmanager
async def declaring_channel(connection: Connection) -> AsyncIterator[Channel]:
    """A throwaway channel for declarations; a refusal becomes ``TopologyError`` and closes only it."""
    channel = await connection.channel(publisher_confirms=False)
    try:
        yield channel
    except ChannelClosedError as exc:
        if exc.code == _PRECONDITION_FAILED:
            raise describe_mismatch(str(exc)) or TopologyError(str(exc)) from None
        raise TopologyError(f"the broker refused a declaration: {exc}") from None
    finally:
        if not channel.is_closed:
            with contextlib.suppress(*CONNECTION_ERRORS):
                await channel.close()


async def declare_exchange(channel: Channel, spec: ExchangeSpec) -> None:
    await channel.exchange_declare(
        exchange=spec.name, exchange_type=spec.type, durable=True, arguments=spec.arguments or None
    )


async def _declare_or_error(connection: Connection, spec: QueueSpec) -> TopologyError | None:
    try:
        async with declaring_channel(connection) as channel:
            await channel.queue_declare(spec.name, durable=True, arguments=spec.arguments)
    except TopologyError as exc:
        return exc
    return None


async def declare_queue(connection: Connection, spec: QueueSpec) -> None:
    """Declare ``spec``; a queue made by an older eventbus without the delivery-limit safety net is
    used as it is, with a warning, instead of failing (RabbitMQ cannot add arguments later)."""
    try:
        async with declaring_channel(connection) as channel:
            await channel.queue_declare(spec.name, durable=True, arguments=spec.arguments)
    except TopologyError:
        legacy = without_safety_net(spec)
        if legacy is None:
            raise
        # Differs in more than the safety net (say, the queue type): report that difference.
        other = await _declare_or_error(connection, legacy)
        if other is not None:
            raise other from None
        log.warning(LEGACY_QUEUE_WARNING, spec.name)


async def bind(channel: Channel, binding: Binding) -> None:
    if binding.to_exchange:
        await channel.exchange_bind(
            destination=binding.destination, source=binding.source, routing_key=binding.routing_key
        )
    else:
        await channel.queue_bind(binding.destination, binding.source, routing_key=binding.routing_key)


async def declare_delay_topology(connection: Connection) -> None:
    """The shared delay exchanges, queues and bindings (idempotent; a few ms once per connection)."""
    topology = delay_topology()
    async with declaring_channel(connection) as channel:
        for exchange in topology.exchanges:
            await declare_exchange(channel, exchange)
        for queue in topology.queues:
            await channel.queue_declare(queue.name, durable=True, arguments=queue.arguments)
        for binding in topology.bindings:
            await bind(channel, binding)


async def apply(connection: Connection, exchanges: Iterable[ExchangeSpec], bindings: Iterable[Binding]) -> None:
    async with declaring_channel(connection) as channel:
        for exchange in exchanges:
            await declare_exchange(channel, exchange)
        for binding in bindings:
            await bind(channel, binding)
