"""One publish outcome as the SDK reports it, whichever transport saw it (no I/O)."""

from __future__ import annotations

from .._exceptions import PublishBlockedError, PublishError, PublishNackedError, UnroutableError
from ._amqp import MessageNacked, MessageReturned, PublishBlocked
from ._protocol import Properties

__all__ = ["describe", "publish_failure"]


def describe(properties: Properties) -> str:
    return f"{properties.message_type or 'message'} {properties.message_id or ''}".rstrip()


def publish_failure(exchange: str, routing_key: str, properties: Properties, error: BaseException) -> PublishError:
    """The SDK's error for one publish the broker returned (mandatory), refused or lost."""
    event_type, event_id = properties.message_type, properties.message_id
    if isinstance(error, MessageReturned | UnroutableError):
        return UnroutableError(
            f"{describe(properties)} is unroutable: no queue is bound to exchange {exchange!r} "
            f"with routing key {routing_key!r}",
            event_type=event_type,
            event_id=event_id,
        )
    if isinstance(error, PublishBlocked):  # settings.when_blocked == "fail"
        return PublishBlockedError(f"{describe(properties)}: {error}", event_type=event_type, event_id=event_id)
    if isinstance(error, MessageNacked | PublishNackedError):
        return PublishNackedError(f"broker refused {describe(properties)}: {error}", event_type=event_type,
                                  event_id=event_id)
    return PublishError(f"publish of {describe(properties)} failed: {type(error).__name__}: {error}",
                        event_type=event_type, event_id=event_id)
