"""What to do with a delivery whose handler failed, or that cannot be handled at all, with no I/O.

Every transport shell settles such a delivery the same way, so they cannot drift apart:

    failure ─RetryPolicy─► Retry      → a copy into the delay queues, targeting this queue
                           ParkReason → a copy to ``<queue>.dlq`` with the diagnosis headers
    undecodable delivery (ParkReason) → a copy to ``<queue>.dlq``

then publish the copy with a confirm and ack the delivery; when the copy is not confirmed,
nack the delivery back to its queue (after a pause): nothing is acked unsettled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ._delay import delay_route
from ._dispatch import Delivery, QueueDispatcher
from ._parking import ParkReason
from ._retry import Retry, RetryPolicy
from ._topology import dead_letter_queue_name
from .transports import Properties

__all__ = ["Republish", "after_republish", "copy_properties", "plan_failure"]


def copy_properties(original: Properties, headers: dict[str, Any], *, reply_to: str | None = None) -> Properties:
    """The original's AMQP properties (persistent) with the copy's headers; a retry copy keeps
    the request's ``reply_to`` (its last attempt answers), a park copy answers no one."""
    return Properties(
        content_type=original.content_type,
        content_encoding=original.content_encoding,
        delivery_mode=2,
        message_id=original.message_id,
        message_type=original.message_type,
        timestamp=original.timestamp,
        app_id=original.app_id,
        correlation_id=original.correlation_id,
        reply_to=reply_to,
        headers=headers,
    )


@dataclass(frozen=True, slots=True)
class Republish:
    """The copy to publish (confirmed) before the failed delivery may be acked.

    ``delayed`` copies go through the delay exchanges (declare them first); ``decision`` is why.
    """

    exchange: str
    routing_key: str
    properties: Properties
    body: bytes
    decision: Retry | ParkReason
    delayed: bool

    @property
    def item(self) -> tuple[str, str, Properties, bytes]:
        return self.exchange, self.routing_key, self.properties, self.body


def plan_failure(
    dispatcher: QueueDispatcher,
    delivery: Delivery,
    properties: Properties,
    failure: BaseException | ParkReason,
    *,
    attempt: int = 1,
    retry: RetryPolicy | None = None,
) -> Republish:
    """The copy that settles ``delivery`` after ``failure`` on attempt ``attempt``.

    ``failure`` is a handler's exception (asked of ``retry``) or the ``ParkReason`` of a delivery
    that could not be handled (parked at once).
    """
    decision: Retry | ParkReason
    if isinstance(failure, ParkReason):
        decision = failure
    else:
        assert retry is not None, "a handler failure needs its RetryPolicy"
        decision = retry.decide(failure, attempt)
    if isinstance(decision, Retry):
        assert isinstance(failure, BaseException)
        ticks, headers = dispatcher.retry_copy(delivery, failure, decision)
        route = delay_route(ticks, dispatcher.queue)
        kept = copy_properties(properties, headers, reply_to=properties.reply_to)
        return Republish(route.exchange, route.routing_key, kept, delivery.body, decision, delayed=True)
    headers = dispatcher.park_copy(delivery, decision, attempt)
    return Republish("", dead_letter_queue_name(dispatcher.queue), copy_properties(properties, headers),
                     delivery.body, decision, delayed=False)


def after_republish(error: BaseException | None) -> Literal["ack", "requeue"]:
    """Ack once the copy is confirmed; otherwise hand the delivery back to its queue."""
    return "ack" if error is None else "requeue"
