"""The service's configuration: one typed value object, read from the environment in one place.

| variable | default | meaning |
|---|---|---|
| ``EVENTBUS_URL`` | local RabbitMQ | broker URL(s), comma-separated |
| ``EVENTBUS_PREFETCH`` | 1000 | unacked deliveries in flight: twice the batch, so the next gathers during a commit |
| ``DATABASE_URL`` | ``sqlite:///context-handling.db`` | SQLite file or ``postgresql://…`` |
| ``REDIS_URL`` | unset: in-process cache | candidate cache |
| ``CONTEXT_SERVICE`` | ``context-handling`` | service name: CloudEvents source, queue prefix |
| ``CONTEXT_TIMEZONE`` | ``UTC`` | how the cron expressions are read |
| ``CONTEXT_FALLBACK_CRON`` | ``0 */6 * * *`` | the fallback job |
| ``CONTEXT_DECAY_CRON`` | ``0 0 * * *`` | the decay recompute |
| ``CONTEXT_SCHEDULER`` | ``on`` | ``off`` runs no periodic jobs in this process |
| ``CONTEXT_HTTP`` | ``127.0.0.1:9480`` | health and metrics address; ``off`` for none, port 0 for any |
| ``CONTEXT_CANDIDATES_TTL`` | 86400 | seconds a cached candidate list lives |
| ``CONTEXT_CACHE_PREFIX`` | ``context-handling:`` | Redis key prefix |
| ``CONTEXT_RELAY`` | ``on`` | ``off``: this process publishes no outbox rows (run ``context-handling relay`` apart) |
| ``CONTEXT_OUTBOX_LEASE`` | 15 | seconds a relay holds claimed outbox rows; a dead relay's rows wait this long |
| ``CONTEXT_DECAY_SHARDS`` | 8 | with ``REDIS_URL``: the daily decay recompute is a chord of N shards; 1: in-process |
| ``CONTEXT_WORKFLOW_ENGINE`` | ``on`` | with a chord: this process also runs the workflow engine (the joins) |
| ``CONTEXT_WORKFLOW_PREFIX`` | ``eventbus:`` | the engine's Redis key prefix (``eventbus workflow list`` reads it) |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from eventbus import BusSettings, ConfigurationError, CronSchedule

__all__ = ["DEFAULT_DATABASE_URL", "DEFAULT_SERVICE", "ServiceSettings"]

DEFAULT_SERVICE = "context-handling"
DEFAULT_DATABASE_URL = "sqlite:///context-handling.db"
DEFAULT_PREFETCH = 1000  # twice the batch: the next batch gathers while one commits


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from None


def _switch(environ: Mapping[str, str], name: str) -> bool:
    return (environ.get(name) or "on").lower() not in ("off", "no", "false", "0")


def _address(raw: str) -> tuple[str, int] | None:
    if raw.lower() in ("off", "no", "false", "0", ""):
        return None
    host, _, port = raw.rpartition(":")
    try:
        return (host or "127.0.0.1", int(port))
    except ValueError:
        raise ConfigurationError(f"CONTEXT_HTTP must be host:port or 'off', got {raw!r}") from None


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """Everything the service needs to know, with the defaults a laptop needs (zero set-up)."""

    bus: BusSettings = field(default_factory=lambda: BusSettings(DEFAULT_SERVICE, prefetch=DEFAULT_PREFETCH))
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    cache_prefix: str = f"{DEFAULT_SERVICE}:"
    candidates_ttl: int = 86_400
    timezone: str = "UTC"
    fallback_cron: str = "0 */6 * * *"
    decay_cron: str = "0 0 * * *"
    scheduler: bool = True
    scheduler_lock_retry: float = 5.0
    http: tuple[str, int] | None = ("127.0.0.1", 9480)
    batch_max: int = 500
    relay_batch: int = 500
    outbox_lease: int = 15
    relay: bool = True
    decay_shards: int = 8
    workflow_engine: bool = True
    workflow_prefix: str = "eventbus:"

    def __post_init__(self) -> None:
        CronSchedule(self.fallback_cron, self.timezone)
        CronSchedule(self.decay_cron, self.timezone)
        if self.candidates_ttl < 1:
            raise ConfigurationError("CONTEXT_CANDIDATES_TTL must be at least 1 second")
        if self.outbox_lease < 1:
            raise ConfigurationError("CONTEXT_OUTBOX_LEASE must be at least 1 second")
        if self.decay_shards < 1:
            raise ConfigurationError("CONTEXT_DECAY_SHARDS must be at least 1")
        if self.batch_max < 1:
            raise ConfigurationError("the batch size must be at least 1")

    @property
    def service(self) -> str:
        return self.bus.service

    @property
    def decay_as_chord(self) -> bool:
        """The daily recompute runs as a chord of shards: it needs Redis (the engine's joins) and 2+ shards."""
        return self.redis_url is not None and self.decay_shards > 1

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ServiceSettings:
        environ = os.environ if env is None else env
        service = environ.get("CONTEXT_SERVICE") or DEFAULT_SERVICE
        bus = BusSettings.from_env(service, env=environ)
        if "EVENTBUS_PREFETCH" not in environ:
            bus = bus.with_(prefetch=DEFAULT_PREFETCH)
        values: dict[str, Any] = {
            "bus": bus,
            "database_url": environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            "redis_url": environ.get("REDIS_URL") or None,
            "cache_prefix": environ.get("CONTEXT_CACHE_PREFIX") or f"{service}:",
            "candidates_ttl": _int(environ, "CONTEXT_CANDIDATES_TTL", 86_400),
            "timezone": environ.get("CONTEXT_TIMEZONE") or "UTC",
            "fallback_cron": environ.get("CONTEXT_FALLBACK_CRON") or "0 */6 * * *",
            "decay_cron": environ.get("CONTEXT_DECAY_CRON") or "0 0 * * *",
            "scheduler": _switch(environ, "CONTEXT_SCHEDULER"),
            "relay": _switch(environ, "CONTEXT_RELAY"),
            "http": _address(environ.get("CONTEXT_HTTP", "127.0.0.1:9480")),
            "outbox_lease": _int(environ, "CONTEXT_OUTBOX_LEASE", 15),
            "decay_shards": _int(environ, "CONTEXT_DECAY_SHARDS", 8),
            "workflow_engine": _switch(environ, "CONTEXT_WORKFLOW_ENGINE"),
            "workflow_prefix": environ.get("CONTEXT_WORKFLOW_PREFIX") or "eventbus:",
        }
        values.update(overrides)
        return cls(**values)

    def with_(self, **changes: Any) -> ServiceSettings:
        return replace(self, **changes)
