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
    RemoteTaskError,
    RequestTimeoutError,
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
    "bulk_insert": "sql", "bulk_update": "sql", "column_in": "sql", "keys_in": "sql",
    "Inbox": "sql", "Outbox": "sql", "OutboxEntry": "sql", "OutboxMessage": "sql",
    "OutboxRelay": "sql", "RelayStats": "sql",
    "UtcDateTime": "sql", "create_sql_engine": "sql", "insert_ignoring_conflicts": "sql", "run_transaction": "sql",
    "CronSchedule": "scheduler", "tick_id": "scheduler", "LeaderLock": "scheduler",
    "ScheduledJob": "scheduler", "Scheduler": "scheduler", "SchedulerStats": "scheduler", "Tick": "scheduler",
    "ClaimResult": "scheduler", "MemoryTickLedger": "scheduler", "SqlTickLedger": "scheduler",
    "TickLedger": "scheduler",
    "DeadLetters": "_dead_letters", "ReplayResult": "_dead_letters",
    "load_schema_contracts": "_schema_contracts",
    "SyncEventBus": "_sync_bus", "TappedMessage": "_tap", "Task": "tasks",
    "Signature": "workflows", "chain": "workflows", "chord": "workflows", "group": "workflows", "step": "workflows",
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
    from ._dead_letters import DeadLetters, ReplayResult
    from ._schema_contracts import load_schema_contracts
    from ._sync_bus import SyncEventBus
    from ._tap import TappedMessage
    from .scheduler import (
        ClaimResult,
        CronSchedule,
        LeaderLock,
        MemoryTickLedger,
        ScheduledJob,
        Scheduler,
        SchedulerStats,
        SqlTickLedger,
        Tick,
        TickLedger,
        tick_id,
    )
    from .sql import (
        Inbox,
        Outbox,
        OutboxEntry,
        OutboxMessage,
        OutboxRelay,
        RelayStats,
        UtcDateTime,
        bulk_insert,
        bulk_update,
        column_in,
        create_sql_engine,
        insert_ignoring_conflicts,
        keys_in,
        run_transaction,
    )
    from .tasks import Task
    from .workflows import Signature, chain, chord, group, step

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
    "RemoteTaskError",
    "ReplayResult",
    "RequestTimeoutError",
    "RetryLater",
    "RetryPolicy",
    "ScheduledJob",
    "Scheduler",
    "SchedulerStats",
    "SchemaViolation",
    "Signature",
    "SqlTickLedger",
    "SyncEventBus",
    "TappedMessage",
    "Task",
    "Tick",
    "TickLedger",
    "TopologyError",
    "TopologyMismatchError",
    "UnroutableError",
    "UtcDateTime",
    "bulk_insert",
    "bulk_update",
    "chain",
    "chord",
    "column_in",
    "consumer_queue_name",
    "contract_for",
    "create_sql_engine",
    "dead_letter_queue_name",
    "group",
    "insert_ignoring_conflicts",
    "keys_in",
    "load_schema_contracts",
    "parse_envelope",
    "redact_url",
    "run_transaction",
    "step",
    "tick_id",
]

__version__ = "0.1.0"
