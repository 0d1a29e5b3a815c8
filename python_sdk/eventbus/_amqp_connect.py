"""Open an aio-pika connection to any broker URL that answers, for the SDK's helper roles.

The scheduler and the leader lock keep connections of their own (apart from the bus's publish
and consume connections), each named ``<service>:<role>`` so the management UI shows who is who.
The URLs are tried in ``BusSettings.connect_order`` (shuffled, recently refused ones last). A
robust connection reconnects by itself; aio-pika would always go back to the URL it first
reached, so ours moves on to the next URL each time it loses its connection: after a cluster
node is lost, the reconnect goes to another node.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractConnection
from yarl import URL

from ._connect_errors import connection_failed
from ._settings import BusSettings, note_unreachable

__all__ = ["connect_first"]


class _FailoverConnection(aio_pika.RobustConnection):
    """A robust connection that reconnects to the next of its URLs after a loss."""

    failover_urls: tuple[str, ...] = ()

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        await super()._on_connection_close(closing)
        if len(self.failover_urls) > 1 and not self._close_called:
            nodes = [_node(url) for url in self.failover_urls]
            here = _node(self.url)
            following = 0
            if here in nodes:
                note_unreachable(self.failover_urls[nodes.index(here)])
                following = (nodes.index(here) + 1) % len(nodes)
            # aio-pika keeps the options it added to the URL (heartbeat=…) in the query: keep them too.
            self.url = URL(self.failover_urls[following]).with_query(self.url.query)


def _node(url: str | URL) -> tuple[str | None, int | None, str]:
    parsed = URL(url)
    return parsed.host, parsed.port, parsed.path


async def connect_first(settings: BusSettings, role: str, *, robust: bool) -> AbstractConnection:
    """A robust (reconnecting, failing over) or plain connection; ``ConnectionFailedError`` when none answers."""
    errors: list[tuple[str, BaseException]] = []
    order = settings.connect_order()
    for url in order:
        try:
            options: dict[str, Any] = {
                "timeout": settings.connect_timeout,
                "heartbeat": settings.heartbeat,
                "client_properties": {"connection_name": f"{settings.service}:{role}", **settings.client_properties},
            }
            if not robust:
                return await aio_pika.connect(url, **options)
            connection = await aio_pika.connect_robust(url, connection_class=_FailoverConnection, **options)
            assert isinstance(connection, _FailoverConnection)
            connection.failover_urls = tuple(order)
            return connection
        except (TimeoutError, OSError, aiormq.exceptions.AMQPError) as exc:
            note_unreachable(url)
            errors.append((url, exc))
    raise connection_failed(errors)
