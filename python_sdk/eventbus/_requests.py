"""The requesting side of request-reply: send an event, wait for its typed reply.

RabbitMQ direct reply-to: the request goes out on the bus's publishing channel with
``reply_to = amq.rabbitmq.reply-to`` and a fresh ``correlation_id``; the transport consumes the
pseudo-queue (no-ack) on that channel before the first request, and every reply is matched to
its waiting caller by correlation id. No queue is declared for replies, so a request that
times out leaves nothing behind on the broker, and a late reply is dropped here.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pydantic import BaseModel

from ._async_publisher import AsyncPublisher, properties_of
from ._exceptions import ConfigurationError, RequestTimeoutError
from ._outgoing import build_outgoing, random_event_id
from ._replies import read_reply
from ._settings import BusSettings
from .transports import DIRECT_REPLY_TO, DirectReplies, Incoming

__all__ = ["Requests"]

log = logging.getLogger("eventbus")


class Requests:
    """The requests of one bus waiting for their replies, by correlation id."""

    def __init__(self, settings: BusSettings, publisher: AsyncPublisher) -> None:
        self._settings = settings
        self._publisher = publisher
        self._waiting: dict[str, asyncio.Future[Incoming]] = {}
        self._listening = False

    def _on_reply(self, message: Incoming) -> None:
        """Called by the transport for every reply on the publishing channel."""
        correlation_id = message.properties.correlation_id
        waiter = self._waiting.pop(correlation_id or "", None)
        if waiter is None:
            log.debug("dropping a reply nobody waits for (correlation id %s): it came too late", correlation_id)
            return
        if not waiter.done():
            waiter.set_result(message)

    async def request(
        self,
        event: BaseModel,
        *,
        reply: type[BaseModel] | None,
        timeout: float,
        subject: str | None = None,
        headers: dict[str, Any] | None = None,
    ) -> Any:
        """Publish ``event`` as a request and return the reply's model (see ``EventBus.request``)."""
        if timeout <= 0:
            raise ConfigurationError(f"a request needs a positive timeout, got {timeout!r}")
        transport = self._publisher.transport
        if not isinstance(transport, DirectReplies):
            raise ConfigurationError(f"the {transport.name} transport does not do request-reply; use the lean one")
        if not self._listening:
            transport.on_reply(self._on_reply)
            self._listening = True
        message = build_outgoing(event, source=self._settings.source, subject=subject, headers=headers)
        properties = properties_of(message)
        properties.reply_to = DIRECT_REPLY_TO
        properties.correlation_id = correlation_id = random_event_id()
        waiter: asyncio.Future[Incoming] = asyncio.get_running_loop().create_future()
        self._waiting[correlation_id] = waiter
        try:
            async with asyncio.timeout(timeout):
                await self._publisher.ensure_exchange(message.exchange)
                await self._publisher.send(body=message.body, exchange=message.exchange,
                                           routing_key=message.routing_key, properties=properties)
                answer = await waiter
        except TimeoutError:
            raise RequestTimeoutError(timeout, event_type=message.event_type, event_id=message.message_id) from None
        finally:
            self._waiting.pop(correlation_id, None)
        return read_reply(answer, reply, request_type=message.event_type, request_id=message.message_id,
                          limits=self._settings.limits)
