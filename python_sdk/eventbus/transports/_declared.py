"""What a publishing connection has declared, each topology once, however many publish at once.

Concurrent first publishes used to declare the same exchange each on its own throwaway channel;
a burst of them (a steady publisher at start-up, a gathered batch) could open thousands of
channels at once and exhaust the connection's ``channel_max``. Here the first caller declares
and the others wait for that same declaration.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

__all__ = ["Declarations"]


class Declarations:
    """Topology names declared on the current connection, and the declarations in flight."""

    def __init__(self) -> None:
        self._done: set[str] = set()
        self._pending: dict[str, asyncio.Future[None]] = {}
        self._generation = 0

    def __contains__(self, name: str) -> bool:
        return name in self._done

    def clear(self) -> None:
        """A new connection: declare everything again (RabbitMQ keeps it, but a broker may be new)."""
        self._done.clear()
        self._pending.clear()
        self._generation += 1

    async def once(self, name: str, declare: Callable[[], Awaitable[None]]) -> None:
        """Run ``declare`` unless ``name`` is declared; callers arriving meanwhile share its outcome."""
        pending = self._pending.get(name)
        if pending is None:
            pending = asyncio.ensure_future(declare())
            self._pending[name] = pending

            def finished(future: asyncio.Future[None], name: str = name, generation: int = self._generation) -> None:
                if self._pending.get(name) is future:
                    del self._pending[name]
                if generation == self._generation and not future.cancelled() and future.exception() is None:
                    self._done.add(name)

            pending.add_done_callback(finished)
        await asyncio.shield(pending)
