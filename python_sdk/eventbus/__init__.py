"""eventbus: typed CloudEvents over RabbitMQ, generated from JSON Schema contracts.

The public API is what ``__all__`` lists; modules starting with ``_`` are private and may change.
"""

from ._async_bus import EventBus, Middleware
from ._context import EventContext
from ._contract import ContractRegistry, EventContract, contract_for
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
from ._limits import InputLimits
from ._parked import ParkedMessage
from ._retry import ExponentialBackoff, RetryPolicy
from ._settings import DEFAULT_URL, BusSettings, redact_url
from ._sync_bus import SyncEventBus, TappedMessage
from ._topology import consumer_queue_name, dead_letter_queue_name

__all__ = [
    "BusSettings",
    "CloudEventAttributes",
    "ConfigurationError",
    "ConnectionFailedError",
    "ContractError",
    "ContractRegistry",
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
    "InputLimits",
    "Middleware",
    "ParkMessage",
    "ParkedMessage",
    "PublishBlockedError",
    "PublishError",
    "PublishNackedError",
    "PublishTimeoutError",
    "ReplayResult",
    "RetryLater",
    "RetryPolicy",
    "SchemaViolation",
    "SyncEventBus",
    "TappedMessage",
    "TopologyError",
    "TopologyMismatchError",
    "UnroutableError",
    "consumer_queue_name",
    "contract_for",
    "dead_letter_queue_name",
    "parse_envelope",
    "redact_url",
]

__version__ = "0.1.0"
