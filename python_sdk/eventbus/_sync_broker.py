"""Connections and declarations for the blocking shell (pika), mirroring ``_async_broker.py``.

Declarations run on a throwaway channel: RabbitMQ closes the channel of a refused declaration,
and the publishing or consuming channel must not die of it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel
from pika.adapters.utils import connection_workflow

from ._connect_errors import connection_failed
from ._delay import Binding, ExchangeSpec, delay_topology
from ._exceptions import TopologyError
from ._settings import BusSettings, note_unreachable
from ._topology import LEGACY_QUEUE_WARNING, QueueSpec, describe_mismatch, without_safety_net

__all__ = ["CONNECTION_ERRORS", "apply", "connect", "declare_delay_topology", "declare_queue", "declaring_channel"]

log = logging.getLogger("eventbus")

CONNECTION_ERRORS = (
    pika.exceptions.AMQPError,
    # pika's connection workflow raises its own types when the handshake times out
    connection_workflow.AMQPConnectorException,
    connection_workflow.AMQPConnectionWorkflowFailed,
    ConnectionError,
    OSError,
)


def connect(settings: BusSettings, role: str) -> pika.BlockingConnection:
    """A connection to any broker URL that answers (``BusSettings.connect_order``), or ``ConnectionFailedError``."""
    errors: list[tuple[str, BaseException]] = []
    for url in settings.connect_order():
        params = pika.URLParameters(url)
        params.heartbeat = settings.heartbeat
        params.blocked_connection_timeout = settings.confirm_timeout
        params.socket_timeout = settings.connect_timeout
        params.stack_timeout = settings.connect_timeout
        params.client_properties = {"connection_name": f"{settings.service}:{role}", **settings.client_properties}
        try:
            return pika.BlockingConnection(params)
        except CONNECTION_ERRORS as exc:
            note_unreachable(url)
            errors.append((url, exc))
    raise connection_failed(errors)


@contextlib.contextmanager
def declaring_channel(connection: pika.BlockingConnection) -> Iterator[BlockingChannel]:
    """A throwaway channel; a refused declaration becomes ``TopologyError`` and closes only it."""
    channel = connection.channel()
    try:
        yield channel
    except pika.exceptions.ChannelClosedByBroker as exc:
        raise describe_mismatch(exc.reply_text) or TopologyError(f"{exc.reply_code} {exc.reply_text}") from None
    finally:
        if channel.is_open:
            with contextlib.suppress(*CONNECTION_ERRORS):
                channel.close()


def _declare_exchange(channel: BlockingChannel, spec: ExchangeSpec) -> None:
    channel.exchange_declare(spec.name, exchange_type=spec.type, durable=True, arguments=spec.arguments or None)


def _bind(channel: BlockingChannel, binding: Binding) -> None:
    if binding.to_exchange:
        channel.exchange_bind(binding.destination, binding.source, routing_key=binding.routing_key)
    else:
        channel.queue_bind(binding.destination, binding.source, routing_key=binding.routing_key)


def _declare_or_error(connection: pika.BlockingConnection, spec: QueueSpec) -> TopologyError | None:
    try:
        with declaring_channel(connection) as channel:
            channel.queue_declare(spec.name, durable=True, arguments=spec.arguments)
    except TopologyError as exc:
        return exc
    return None


def declare_queue(connection: pika.BlockingConnection, spec: QueueSpec) -> None:
    """Declare ``spec``, accepting (with a warning) a queue made without the delivery-limit safety net."""
    try:
        with declaring_channel(connection) as channel:
            channel.queue_declare(spec.name, durable=True, arguments=spec.arguments)
    except TopologyError:
        legacy = without_safety_net(spec)
        if legacy is None:
            raise
        # Differs in more than the safety net (say, the queue type): report that difference.
        other = _declare_or_error(connection, legacy)
        if other is not None:
            raise other from None
        log.warning(LEGACY_QUEUE_WARNING, spec.name)


def apply(connection: pika.BlockingConnection, exchanges: Iterable[ExchangeSpec], bindings: Iterable[Binding]) -> None:
    with declaring_channel(connection) as channel:
        for exchange in exchanges:
            _declare_exchange(channel, exchange)
        for binding in bindings:
            _bind(channel, binding)


def declare_delay_topology(connection: pika.BlockingConnection) -> None:
    topology = delay_topology()
    with declaring_channel(connection) as channel:
        for exchange in topology.exchanges:
            _declare_exchange(channel, exchange)
        for queue in topology.queues:
            channel.queue_declare(queue.name, durable=True, arguments=queue.arguments)
        for binding in topology.bindings:
            _bind(channel, binding)
