"""Connections and declarations for the asyncio shell, straight on aiormq (aio-pika's AMQP layer).

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
from urllib.parse import urlsplit, urlunsplit

import aiormq
from aiormq.abc import AbstractChannel, AbstractConnection

from ._connect_errors import connection_failed
from ._delay import Binding, ExchangeSpec, delay_topology
from ._exceptions import TopologyError
from ._settings import BusSettings
from ._topology import LEGACY_QUEUE_WARNING, QueueSpec, describe_mismatch, without_safety_net

__all__ = ["connect", "declare_delay_topology", "declare_exchange", "declare_queue", "declaring_channel", "is_blocked"]

log = logging.getLogger("eventbus")

CONNECTION_ERRORS = (aiormq.exceptions.AMQPError, ConnectionError, OSError, RuntimeError, asyncio.TimeoutError)


def _with_heartbeat(url: str, heartbeat: int) -> str:
    parts = urlsplit(url)
    if "heartbeat=" in parts.query:
        return url
    query = f"{parts.query}&heartbeat={heartbeat}" if parts.query else f"heartbeat={heartbeat}"
    return urlunsplit(parts._replace(query=query))


async def connect(settings: BusSettings, role: str) -> AbstractConnection:
    """A connection to the first broker URL that answers, or ``ConnectionFailedError``."""
    errors: list[tuple[str, BaseException]] = []
    properties = {"connection_name": f"{settings.service}:{role}", **settings.client_properties}
    for url in settings.urls:
        connection = aiormq.Connection(_with_heartbeat(url, settings.heartbeat))
        try:
            async with asyncio.timeout(settings.connect_timeout):
                await connection.connect(client_properties=properties)
            return connection
        except CONNECTION_ERRORS as exc:
            errors.append((url, exc))
            with contextlib.suppress(Exception):
                await connection.close()
    raise connection_failed(errors)


def is_blocked(connection: AbstractConnection | None) -> bool:
    """True while the broker blocks this connection (memory or disk alarm)."""
    unblocked = getattr(connection, "_Connection__connection_unblocked", None)
    return isinstance(unblocked, asyncio.Event) and not unblocked.is_set()


@contextlib.asynccontextmanager
async def declaring_channel(connection: AbstractConnection) -> AsyncIterator[AbstractChannel]:
    """A throwaway channel for declarations; a refusal becomes ``TopologyError`` and closes only it."""
    channel = await connection.channel(publisher_confirms=False)
    try:
        yield channel
    except aiormq.exceptions.ChannelPreconditionFailed as exc:
        raise describe_mismatch(str(exc)) or TopologyError(str(exc)) from None
    except aiormq.exceptions.ChannelClosed as exc:
        raise TopologyError(f"the broker refused a declaration: {exc}") from None
    finally:
        if not channel.is_closed:
            with contextlib.suppress(*CONNECTION_ERRORS):
                await channel.close()


async def declare_exchange(channel: AbstractChannel, spec: ExchangeSpec) -> None:
    await channel.exchange_declare(
        exchange=spec.name, exchange_type=spec.type, durable=True, arguments=spec.arguments or None
    )


async def _declare_or_error(connection: AbstractConnection, spec: QueueSpec) -> TopologyError | None:
    try:
        async with declaring_channel(connection) as channel:
            await channel.queue_declare(spec.name, durable=True, arguments=spec.arguments)
    except TopologyError as exc:
        return exc
    return None


async def declare_queue(connection: AbstractConnection, spec: QueueSpec) -> None:
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


async def bind(channel: AbstractChannel, binding: Binding) -> None:
    if binding.to_exchange:
        await channel.exchange_bind(
            destination=binding.destination, source=binding.source, routing_key=binding.routing_key
        )
    else:
        await channel.queue_bind(binding.destination, binding.source, routing_key=binding.routing_key)


async def declare_delay_topology(connection: AbstractConnection) -> None:
    """The shared delay exchanges, queues and bindings (idempotent; a few ms once per connection)."""
    topology = delay_topology()
    async with declaring_channel(connection) as channel:
        for exchange in topology.exchanges:
            await declare_exchange(channel, exchange)
        for queue in topology.queues:
            await channel.queue_declare(queue.name, durable=True, arguments=queue.arguments)
        for binding in topology.bindings:
            await bind(channel, binding)


async def apply(connection: AbstractConnection, exchanges: Iterable[ExchangeSpec], bindings: Iterable[Binding]) -> None:
    async with declaring_channel(connection) as channel:
        for exchange in exchanges:
            await declare_exchange(channel, exchange)
        for binding in bindings:
            await bind(channel, binding)
