"""eventbus: typed CloudEvents over RabbitMQ, generated from JSON Schema contracts.

The public API is what ``__all__`` lists; modules starting with ``_`` are private and may change.
"""

from ._async_bus import EventBus, Middleware
from ._bulk import bulk_insert, bulk_update, column_in, keys_in
from ._context import EventContext
from ._contract import ContractRegistry, EventContract, contract_for
from ._cron import CronSchedule, tick_id
from ._dead_letters import DeadLetters, ReplayResult
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
from ._inbox import Inbox
from ._leader import LeaderLock
from ._limits import InputLimits
from ._outbox import Outbox, OutboxEntry, OutboxMessage
from ._parked import ParkedMessage
from ._relay import OutboxRelay, RelayStats
from ._retry import ExponentialBackoff, RetryPolicy
from ._scheduler import ScheduledJob, Scheduler, SchedulerStats, Tick
from ._settings import DEFAULT_URL, BusSettings, redact_url
from ._sql import UtcDateTime, create_sql_engine, insert_ignoring_conflicts, run_transaction
from ._sync_bus import SyncEventBus, TappedMessage
from ._tick_ledger import ClaimResult, MemoryTickLedger, SqlTickLedger, TickLedger
from ._topology import consumer_queue_name, dead_letter_queue_name

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
    "parse_envelope",
    "redact_url",
    "run_transaction",
    "tick_id",
]

__version__ = "0.1.0"
