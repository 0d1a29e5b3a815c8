"""Where the scheduler remembers which ticks have run, so a tick fired twice runs once.

A tick can be fired twice: a new leader re-fires the latest tick when it takes over (it cannot
know whether the old leader got to it), and a leader cut off from the broker may fire once more
before it notices. The ledger turns those into one run. ``SqlTickLedger`` keeps the ids in an
``Inbox`` table, shared by every replica; ``MemoryTickLedger`` is for a single process and tests.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Protocol

from ._inbox import Inbox
from ._sql import run_transaction

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["MemoryTickLedger", "SqlTickLedger", "TickLedger"]


class TickLedger(Protocol):
    """Blocking calls; the scheduler runs them in a worker thread."""

    def seen(self, tick_id: str) -> bool:
        """True when the tick has run to completion before."""
        ...

    def record(self, tick_id: str) -> None:
        """Remember that the tick ran to completion."""
        ...


class MemoryTickLedger:
    """Tick ids in a set: correct for replicas inside one process only."""

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    def seen(self, tick_id: str) -> bool:
        with self._lock:
            return tick_id in self._ids

    def record(self, tick_id: str) -> None:
        with self._lock:
            self._ids.add(tick_id)


class SqlTickLedger:
    """Tick ids in an ``Inbox`` table (consumer ``<service>.scheduler`` by convention)."""

    def __init__(self, engine: Engine, inbox: Inbox) -> None:
        self.engine = engine
        self.inbox = inbox

    def seen(self, tick_id: str) -> bool:
        with self.engine.connect() as connection:
            return self.inbox.seen(connection, tick_id)

    def record(self, tick_id: str) -> None:
        run_transaction(self.engine, lambda connection: self.inbox.claim(connection, tick_id))
