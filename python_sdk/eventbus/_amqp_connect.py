"""Open an aio-pika connection to the first broker URL that answers, for the SDK's helper roles.

The scheduler and the leader lock keep connections of their own (apart from the bus's publish
and consume connections), each named ``<service>:<role>`` so the management UI shows who is who.
"""

from __future__ import annotations

import aio_pika
import aiormq
from aio_pika.abc import AbstractConnection

from ._connect_errors import connection_failed
from ._settings import BusSettings

__all__ = ["connect_first"]


async def connect_first(settings: BusSettings, role: str, *, robust: bool) -> AbstractConnection:
    """A robust (reconnecting) or plain connection; ``ConnectionFailedError`` when none answers."""
    connect = aio_pika.connect_robust if robust else aio_pika.connect
    errors: list[tuple[str, BaseException]] = []
    for url in settings.urls:
        try:
            return await connect(
                url,
                timeout=settings.connect_timeout,
                heartbeat=settings.heartbeat,
                client_properties={"connection_name": f"{settings.service}:{role}", **settings.client_properties},
            )
        except (TimeoutError, OSError, aiormq.exceptions.AMQPError) as exc:
            errors.append((url, exc))
    raise connection_failed(errors)
