"""One exception tree for the whole SDK.

    EventBusError
    ├── ConfigurationError            bad settings or arguments given by the caller
    ├── ContractError                 a model or event type the registry does not know
    ├── EventValidationError          data that does not satisfy its contract
    ├── EnvelopeError                 missing or malformed CloudEvents attributes
    ├── TopologyError                 a declaration the broker refused
    │   └── TopologyMismatchError     an existing queue/exchange has other arguments
    ├── ConnectionFailedError         no broker answered
    ├── PublishError                  a publish that did not reach a queue
    │   ├── UnroutableError           returned by the broker (mandatory, no binding)
    │   ├── PublishNackedError        negatively confirmed by the broker
    │   └── PublishTimeoutError       no confirm within the bound
    │       └── PublishBlockedError   the broker blocked publishing (memory or disk alarm) all that time
    ├── HandlerTimeoutError           a handler ran past its time limit (a failed attempt)
    ├── RemoteTaskError               a request's handler failed (after its last attempt) or refused it
    └── RequestTimeoutError           no reply to a request in time

    HandlerControl (control flow, raised by handlers on purpose; not failures)
    ├── ParkMessage                   "send this to the dead-letter queue now"
    └── RetryLater                    "try again in N seconds" (counts as an attempt)

Every error carries the context needed to act on it (event type, message id, queue, schema
path) as attributes, and its ``str()`` is one line fit for a log or a CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

__all__ = [
    "ConfigurationError",
    "ConnectionFailedError",
    "ContractError",
    "EnvelopeError",
    "EventBusError",
    "EventValidationError",
    "HandlerControl",
    "HandlerTimeoutError",
    "ParkMessage",
    "PublishBlockedError",
    "PublishError",
    "PublishNackedError",
    "PublishTimeoutError",
    "RemoteTaskError",
    "RequestTimeoutError",
    "RetryLater",
    "SchemaViolation",
    "TopologyError",
    "TopologyMismatchError",
    "UnroutableError",
]


class EventBusError(Exception):
    """Base of every error the SDK raises on purpose."""


class ConfigurationError(EventBusError):
    """Settings or arguments that cannot work, caught before touching the broker."""


class ContractError(EventBusError):
    """A model class or event type that no registered contract describes."""

    def __init__(self, message: str, *, event_type: str | None = None) -> None:
        super().__init__(message)
        self.event_type = event_type


@dataclass(frozen=True, slots=True)
class SchemaViolation:
    """One reason an instance failed its JSON Schema: where in the data, where in the schema, why."""

    instance_path: str
    schema_path: str
    message: str

    def __str__(self) -> str:
        return f"{self.instance_path or '/'}: {self.message} (schema {self.schema_path})"


class EventValidationError(EventBusError):
    """Event data that breaks its contract; ``violations`` lists every reason found."""

    def __init__(self, event_type: str, violations: Sequence[SchemaViolation], *, reason: str = "schema_invalid"):
        self.event_type = event_type
        self.violations = tuple(violations)
        self.reason = reason
        shown = "; ".join(str(v) for v in self.violations[:5])
        more = f" (+{len(self.violations) - 5} more)" if len(self.violations) > 5 else ""
        super().__init__(f"{event_type}: {shown}{more}")


class EnvelopeError(EventBusError):
    """A delivery whose CloudEvents envelope is missing, malformed or unsupported.

    ``reason`` is a stable machine-readable code (``missing_attribute``, ``bad_specversion``,
    ``unsupported_content_type``, ``invalid_json``, ...) that ends up in the DLQ headers.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class TopologyError(EventBusError):
    """The broker refused a declaration (exchange, queue or binding)."""


class TopologyMismatchError(TopologyError):
    """An existing entity was declared before with other arguments; the message says which."""

    def __init__(self, entity: str, detail: str) -> None:
        super().__init__(f"{entity} already exists with other arguments: {detail}")
        self.entity = entity
        self.detail = detail


class ConnectionFailedError(EventBusError):
    """No broker answered at the configured URL(s). The URL in the message never shows a password."""


class PublishError(EventBusError):
    """A publish that is not known to be safely on a queue; the caller must treat it as not sent."""

    def __init__(self, message: str, *, event_type: str | None = None, event_id: str | None = None) -> None:
        super().__init__(message)
        self.event_type = event_type
        self.event_id = event_id


class UnroutableError(PublishError):
    """The broker returned a mandatory message: no queue is bound for its routing key."""


class PublishNackedError(PublishError):
    """The broker negatively confirmed the message (e.g. a queue's overflow policy rejected it)."""


class PublishTimeoutError(PublishError):
    """No confirm arrived within the bound; the message may or may not have been stored."""


class PublishBlockedError(PublishTimeoutError):
    """The broker blocked the publishing connection (memory or disk alarm) for longer than the bound."""


class HandlerTimeoutError(EventBusError):
    """A handler ran past its time limit; it was cancelled and the attempt counts as failed."""

    def __init__(self, limit: float, *, event_type: str | None = None, event_id: str | None = None) -> None:
        super().__init__(f"handler for {event_type or 'event'} {event_id or ''} ran past its {limit:g}s time limit")
        self.limit = limit
        self.event_type = event_type
        self.event_id = event_id


class RemoteTaskError(EventBusError):
    """The handler of a request failed after its last attempt (or the request was parked at
    once): raised on the caller's side with the remote exception's type name and message."""

    def __init__(self, remote_type: str, remote_message: str, *, event_type: str | None = None,
                 event_id: str | None = None) -> None:
        super().__init__(f"{event_type or 'request'} {event_id or ''} failed remotely: {remote_type}: {remote_message}")
        self.remote_type = remote_type
        self.remote_message = remote_message
        self.event_type = event_type
        self.event_id = event_id


class RequestTimeoutError(EventBusError):
    """No reply came within the request's timeout (the handler may still run; its late reply is dropped)."""

    def __init__(self, timeout: float, *, event_type: str | None = None, event_id: str | None = None) -> None:
        super().__init__(f"no reply to {event_type or 'request'} {event_id or ''} within {timeout:g}s")
        self.timeout = timeout
        self.event_type = event_type
        self.event_id = event_id


class HandlerControl(Exception):
    """Raised by a handler on purpose to steer what happens to the message (not a failure)."""


class ParkMessage(HandlerControl):
    """Send the message to the dead-letter queue now, without further attempts."""

    def __init__(self, reason: str = "parked_by_handler") -> None:
        super().__init__(reason)
        self.reason = reason


class RetryLater(HandlerControl):
    """Try the message again after ``delay`` seconds (a float or a ``timedelta``).

    It counts as a failed attempt: after the handler's ``max_attempts`` the message is parked,
    so a handler cannot postpone a message forever by accident.
    """

    def __init__(self, delay: float | timedelta, reason: str = "retry_requested") -> None:
        seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
        if seconds < 0:
            raise ValueError(f"RetryLater delay must not be negative, got {seconds:g}s")
        super().__init__(f"{reason}: retry in {seconds:g}s")
        self.delay = seconds
        self.reason = reason
