"""The revocation store: which workflow ids and event ids were cancelled (docs/wire-format.md,
"Cancel and revoke").

``cancel(workflow_id)`` and ``revoke(event_id)`` write the key ``eventbus:revoked:<id>`` (value: the
RFC 3339 time, expiring after 7 days by default); a consumer asks ``revoked(workflow_id, event_id)``
before it runs a step or a delayed message, in one ``EXISTS`` with both keys. Redis is the store on
the wire, so a Node or Go runtime reads the same keys; ``MemoryRevocations`` is the in-memory twin
``eventbus.testing`` gives its memory buses.

redis-py is imported only when a ``RedisRevocations`` first talks to Redis (the extra ``workflows``),
so a bus without a store needs no Redis client.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ._envelope import format_time
from ._exceptions import ConfigurationError, EventBusError
from ._settings import redact_url

if TYPE_CHECKING:
    from collections.abc import Awaitable

__all__ = [
    "DEFAULT_REVOKE_TTL",
    "REVOKED_PREFIX",
    "MemoryRevocations",
    "RedisRevocations",
    "RevocationStoreError",
    "Revocations",
    "open_revocations",
    "substituted_revocations",
]

REVOKED_PREFIX = "eventbus:revoked:"
DEFAULT_REVOKE_TTL = timedelta(days=7)
"""As long as the longest delay (7 days): a revoked delayed message is dropped whenever it falls due."""


class RevocationStoreError(EventBusError):
    """The revocation store did not answer (a consumer hands the delivery back and asks again later)."""


def _seconds(ttl: float | timedelta) -> int:
    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)
    if seconds < 1:
        raise ConfigurationError(f"a revocation must be kept at least 1 s, got {seconds:g}s")
    return int(seconds)


@runtime_checkable
class Revocations(Protocol):
    """Where revoked ids are kept; a runtime asks it before running a step or a delayed message."""

    async def revoked(self, *ids: str) -> bool:
        """Whether any of ``ids`` is revoked (one round trip); ``RevocationStoreError`` when unknown."""
        ...

    async def revoke(self, id: str, ttl: float | timedelta = DEFAULT_REVOKE_TTL) -> None:
        """Mark ``id`` (a workflow id or an event id) revoked for ``ttl`` (seconds or a timedelta)."""
        ...

    async def close(self) -> None:
        """Let go of connections (idempotent)."""
        ...


class RedisRevocations:
    """The store on Redis: ``SET <prefix><id> <time> EX <ttl>``, ``EXISTS <prefix><a> <prefix><b>``.

    ``prefix`` is ``eventbus:revoked:`` on the wire; tests give a private one. Commands time out
    after ``timeout`` seconds, so a Redis that hangs holds a delivery that long, not forever.
    """

    def __init__(self, url: str, *, prefix: str = REVOKED_PREFIX, timeout: float = 2.0) -> None:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigurationError(f"the revocation store URL must start with redis://, rediss:// or unix://: "
                                     f"{redact_url(url)}")
        self.url = url
        self.prefix = prefix
        self._timeout = timeout
        self._client: Any = None

    def _redis(self) -> Any:
        if self._client is None:
            try:
                from redis import asyncio as aioredis
            except ImportError:
                raise ConfigurationError('the revocation store needs redis-py: pip install "eventbus[workflows]"') \
                    from None
            self._client = aioredis.Redis.from_url(self.url, socket_timeout=self._timeout,
                                                   socket_connect_timeout=self._timeout)
        return self._client

    async def _call(self, command: Awaitable[Any]) -> Any:
        from redis.exceptions import RedisError

        try:
            return await command
        except (RedisError, OSError) as exc:
            raise RevocationStoreError(f"the revocation store at {redact_url(self.url)} did not answer: {exc}") \
                from exc

    async def revoked(self, *ids: str) -> bool:
        if not ids:
            return False
        client = self._redis()
        return bool(await self._call(client.exists(*(self.prefix + i for i in ids))))

    async def revoke(self, id: str, ttl: float | timedelta = DEFAULT_REVOKE_TTL) -> None:
        client = self._redis()
        await self._call(client.set(self.prefix + id, format_time(datetime.now(UTC)), ex=_seconds(ttl)))

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def __repr__(self) -> str:
        return f"RedisRevocations({redact_url(self.url)!r}, prefix={self.prefix!r})"


class MemoryRevocations:
    """The store in memory, with expiry on ``clock`` (seconds; the memory broker's clock in tests).

    ``lookups`` counts ``revoked`` calls, so a test can tell which deliveries cost a look-up."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until: dict[str, float] = {}
        self.lookups = 0

    async def revoked(self, *ids: str) -> bool:
        self.lookups += 1
        now = self._clock()
        return any(self._until.get(i, -1.0) > now for i in ids)

    async def revoke(self, id: str, ttl: float | timedelta = DEFAULT_REVOKE_TTL) -> None:
        self._until[id] = self._clock() + _seconds(ttl)

    async def close(self) -> None:
        return None


_substitute: Callable[[], Revocations] | None = None
"""Set by ``eventbus.testing.in_memory``: buses made meanwhile without a store of their own use this one."""


def _substitute_with(factory: Callable[[], Revocations] | None) -> Callable[[], Revocations] | None:
    global _substitute
    previous, _substitute = _substitute, factory
    return previous


def substituted_revocations() -> Revocations | None:
    """The store ``eventbus.testing.in_memory`` puts in place now (a bus asks when it is made), or None."""
    return _substitute() if _substitute is not None else None


def open_revocations(choice: Revocations | None, url: str | None) -> Revocations | None:
    """The store a bus uses: the one given (or put in place by ``in_memory``), else Redis at
    ``url`` (``BusSettings.revocations_url``), else none (no check, and cancel/revoke refuse)."""
    if choice is not None:
        return choice
    if url:
        return RedisRevocations(url)
    return None
