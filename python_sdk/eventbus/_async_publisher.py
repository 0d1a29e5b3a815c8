"""Confirmed publishing for the asyncio bus, above the transport seam: every publish is
confirmed, or it raises.

This layer plans what to send (delays, landing queues, the exchanges to declare) and slices
large batches; the transport (``transports/``) moves the bytes, waits for the confirms and
reconnects, and reports one outcome per message (``UnroutableError`` for a mandatory return,
``PublishNackedError``, ``PublishTimeoutError``, ``PublishBlockedError``, ``PublishError``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from ._delay import DELIVER_EXCHANGE as _DELIVER
from ._delay import Binding, ExchangeSpec, delay_route, delay_topology, landing_queue, target_binding_key
from ._exceptions import PublishError
from ._outgoing import OutgoingMessage, delayed_headers
from ._settings import BusSettings
from .transports import Outgoing, Properties, Topology, Transport, open_transport

__all__ = ["AsyncPublisher", "delay_machinery", "properties_of"]


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


@lru_cache(maxsize=1)
def delay_machinery() -> Topology:
    """The shared delay exchanges, queues and bindings as one topology."""
    topology = delay_topology()
    return Topology(_DELIVER, topology.exchanges, topology.queues, topology.bindings)


@lru_cache(maxsize=1024)
def _exchange(name: str) -> Topology:
    return Topology(name, (ExchangeSpec(name),))


class AsyncPublisher:
    """Plans publishes (delays, declarations, slices) and hands them to the transport."""

    def __init__(self, settings: BusSettings, transport: Transport | str | None = None) -> None:
        self._settings = settings
        self.transport = open_transport(transport, settings)

    # -- declarations (the transport declares each once per connection) -------------------------

    async def ensure_exchange(self, name: str) -> None:
        if name:
            await self.transport.declare(_exchange(name))

    async def ensure_delays(self) -> None:
        await self.transport.declare(delay_machinery())

    async def ensure_landing(self, exchange: str, routing_key: str) -> str:
        """The landing queue that hands delayed events to ``exchange`` with ``routing_key``."""
        spec = landing_queue(exchange, routing_key)
        await self.ensure_delays()
        await self.ensure_exchange(exchange)
        binding = Binding(_DELIVER, spec.name, target_binding_key(spec.name))
        await self.transport.declare(Topology(spec.name, (), (spec,), (binding,)))
        return spec.name

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
        """Publish ``items`` (mandatory, confirmed); one outcome per item, in order."""
        return await self.transport.publish(items)

    async def close(self) -> None:
        await self.transport.close()
