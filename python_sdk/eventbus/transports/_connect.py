"""Connections for the SDK's helper roles (scheduler, leader lock, dead-letter tools).

They keep connections of their own, apart from the bus's publish and consume connections, each
named ``<service>:<role>`` so the management UI shows who is who; all are the SDK's lean AMQP
client (``_amqp``), opened on the first broker URL that answers.
"""

from __future__ import annotations

from .._settings import BusSettings
from ._amqp import Connection
from ._broker import connect

__all__ = ["connect_first"]


async def connect_first(settings: BusSettings, role: str) -> Connection:
    """A connection to the first URL that answers; ``ConnectionFailedError`` when none does.

    Not self-healing: a helper that needs to survive the broker watches ``Connection.closing``
    and opens a new one (a leader must notice it lost its lock, not quietly take it again).
    """
    return await connect(settings, role)
