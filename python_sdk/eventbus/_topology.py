"""Names and arguments of everything the bus declares on RabbitMQ, with no I/O.

    exchange      <domain>                    durable topic exchange, routing key = event type
    queue         <service>.<event type>      quorum (default) or classic, durable
    dead letters  <queue>.dlq                 same type as the queue; parked messages wait here

Keeping the names in one module means the Python SDK, the CLI, the docs and the generated Node
and Go bindings agree on what a user sees in the management UI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ._exceptions import TopologyMismatchError

__all__ = [
    "QueueSpec",
    "consumer_queue_name",
    "dead_letter_queue_name",
    "describe_mismatch",
    "queue_specs",
]


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A durable queue and the broker arguments it is declared with."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


def consumer_queue_name(service: str, event_type: str) -> str:
    return f"{service}.{event_type}"


def dead_letter_queue_name(queue: str) -> str:
    return f"{queue}.dlq"


def queue_specs(queue: str, queue_type: str) -> tuple[QueueSpec, QueueSpec]:
    """The consumer queue and its dead-letter queue.

    Parking is an explicit, confirmed publish to the DLQ (so we can add reason headers), not a
    broker-side dead-letter route; the consumer queue therefore needs no DLX argument.
    """
    arguments = {"x-queue-type": queue_type}
    return QueueSpec(queue, dict(arguments)), QueueSpec(dead_letter_queue_name(queue), dict(arguments))


_INEQUIVALENT = re.compile(r"inequivalent arg '(?P<arg>[^']+)' for (?P<kind>queue|exchange) '(?P<name>[^']+)'")


def describe_mismatch(broker_text: str) -> TopologyMismatchError | None:
    """Turn RabbitMQ's PRECONDITION_FAILED text into a ``TopologyMismatchError``, if it is one.

    RabbitMQ names the argument, the value we sent and the value in place, e.g. "inequivalent
    arg 'x-queue-type' for queue 'a.b' in vhost '/': received the value 'quorum' of type
    'longstr' but current is none"; we keep that detail and drop the AMQP noise around it.
    """
    match = _INEQUIVALENT.search(broker_text)
    if match is None:
        if "inequivalent arg" not in broker_text and "durable" not in broker_text:
            return None
        return TopologyMismatchError("entity", broker_text)
    detail = broker_text[match.start() :]
    detail = detail.split(" - ", 1)[-1].rstrip("')\" ")
    return TopologyMismatchError(f"{match['kind']} {match['name']!r}", detail)
