"""eventbus: typed CloudEvents over RabbitMQ, generated from JSON Schema contracts.

The public API is what ``__all__`` lists; modules starting with ``_`` are private and may change.
"""

import importlib as _importlib
import typing as _typing

from ._async_bus import EventBus, Middleware
from ._context import EventContext
from ._contract import ContractRegistry, EventContract, contract_for
from ._envelope import CloudEventAttributes, parse_envelope
from ._exceptions import (
    ConfigurationError,
    ConnectionFailedError,
    ContractError,
    EnvelopeError,
    EventBusError,
    EventValidationError,
    HandlerControl,
    HandlerTimeoutError,
    ParkMessage,
    PublishBlockedError,
    PublishError,
    PublishNackedError,
    PublishTimeoutError,
    RetryLater,
    SchemaViolation,
    TopologyError,
    TopologyMismatchError,
    UnroutableError,
)
from ._limits import InputLimits
from ._parked import ParkedMessage
from ._retry import ExponentialBackoff, RetryPolicy
from ._settings import DEFAULT_URL, BusSettings, redact_url
from ._topology import consumer_queue_name, dead_letter_queue_name

# Loaded on first use: each pulls in a library a plain EventBus service does not need (SQLAlchemy
# about 28 MB of memory, croniter 5 MB), so a consumer that only
# publishes and handles events stays small (docs/performance.md, Memory).
_LAZY = {
    "bulk_insert": "_bulk", "bulk_update": "_bulk", "column_in": "_bulk", "keys_in": "_bulk",
    "CronSchedule": "_cron", "tick_id": "_cron",
    "DeadLetters": "_dead_letters", "ReplayResult": "_dead_letters",
    "Inbox": "_inbox",
    "LeaderLock": "_leader",
    "Outbox": "_outbox", "OutboxEntry": "_outbox", "OutboxMessage": "_outbox",
    "OutboxRelay": "_relay", "RelayStats": "_relay",
    "load_schema_contracts": "_schema_contracts",
    "ScheduledJob": "_scheduler", "Scheduler": "_scheduler", "SchedulerStats": "_scheduler", "Tick": "_scheduler",
    "UtcDateTime": "_sql", "create_sql_engine": "_sql", "insert_ignoring_conflicts": "_sql",
    "run_transaction": "_sql",
    "SyncEventBus": "_sync_bus", "TappedMessage": "_tap",
    "ClaimResult": "_tick_ledger", "MemoryTickLedger": "_tick_ledger", "SqlTickLedger": "_tick_ledger",
    "TickLedger": "_tick_ledger",
}


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'eventbus' has no attribute {name!r}")
    value = getattr(_importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # once: later look-ups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if _typing.TYPE_CHECKING:
    from ._bulk import bulk_insert, bulk_update, column_in, keys_in
    from ._cron import CronSchedule, tick_id
    from ._dead_letters import DeadLetters, ReplayResult
    from ._inbox import Inbox
    from ._leader import LeaderLock
    from ._outbox import Outbox, OutboxEntry, OutboxMessage
    from ._relay import OutboxRelay, RelayStats
    from ._scheduler import ScheduledJob, Scheduler, SchedulerStats, Tick
    from ._schema_contracts import load_schema_contracts
    from ._sql import UtcDateTime, create_sql_engine, insert_ignoring_conflicts, run_transaction
    from ._sync_bus import SyncEventBus
    from ._tap import TappedMessage
    from ._tick_ledger import ClaimResult, MemoryTickLedger, SqlTickLedger, TickLedger

__all__ = [
    "BusSettings",
    "ClaimResult",
    "CloudEventAttributes",
    "ConfigurationError",
    "ConnectionFailedError",
    "ContractError",
    "ContractRegistry",
    "CronSchedule",
    "DEFAULT_URL",
    "DeadLetters",
    "EnvelopeError",
    "EventBus",
    "EventBusError",
    "EventContext",
    "EventContract",
    "EventValidationError",
    "ExponentialBackoff",
    "HandlerControl",
    "HandlerTimeoutError",
    "Inbox",
    "InputLimits",
    "LeaderLock",
    "MemoryTickLedger",
    "Middleware",
    "Outbox",
    "OutboxEntry",
    "OutboxMessage",
    "OutboxRelay",
    "ParkMessage",
    "ParkedMessage",
    "PublishBlockedError",
    "PublishError",
    "PublishNackedError",
    "PublishTimeoutError",
    "RelayStats",
    "ReplayResult",
    "RetryLater",
    "RetryPolicy",
    "ScheduledJob",
    "Scheduler",
    "SchedulerStats",
    "SchemaViolation",
    "SqlTickLedger",
    "SyncEventBus",
    "TappedMessage",
    "Tick",
    "TickLedger",
    "TopologyError",
    "TopologyMismatchError",
    "UnroutableError",
    "UtcDateTime",
    "bulk_insert",
    "bulk_update",
    "column_in",
    "consumer_queue_name",
    "contract_for",
    "create_sql_engine",
    "dead_letter_queue_name",
    "insert_ignoring_conflicts",
    "keys_in",
    "load_schema_contracts",
    "parse_envelope",
    "redact_url",
    "run_transaction",
    "tick_id",
]

__version__ = "0.1.0"
