"""Names and arguments of everything the bus declares on RabbitMQ, with no I/O.

    exchange      <domain>                    durable topic exchange, routing key = event type
    queue         <service>.<event type>      quorum (default) or classic, durable
    dead letters  <queue>.dlq                 same type as the queue; parked messages wait here
    delays        eventbus.delay.*            shared by all services, see ``_delay.py``

Keeping the names in one module means the Python SDK, the CLI, the docs and the generated Node
and Go bindings agree on what a user sees in the management UI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ._exceptions import TopologyMismatchError

__all__ = [
    "LEGACY_QUEUE_WARNING",
    "SAFETY_NET_ARGUMENTS",
    "QueueSpec",
    "consumer_queue_name",
    "dead_letter_queue_name",
    "describe_mismatch",
    "queue_specs",
    "without_safety_net",
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


def queue_specs(
    queue: str, queue_type: str, delivery_limit: int | None = None, *, single_active_consumer: bool = False
) -> tuple[QueueSpec, QueueSpec]:
    """The consumer queue and its dead-letter queue.

    Parking is an explicit, confirmed publish to the DLQ (so we can add reason headers). A
    quorum queue also gets a broker-side safety net: after ``delivery_limit`` deliveries that
    were never acked (a consumer that crashes on a message before it can count attempts) the
    broker dead-letters the message to the same DLQ through the default exchange.

    ``single_active_consumer`` adds ``x-single-active-consumer``: of all the consumers on the
    queue the broker delivers to one, and to the next only when it goes away, so deliveries
    keep the queue's order across replicas (docs/ordering.md). Other queues are declared
    exactly as before, so every language declares them alike.
    """
    dead_letters = dead_letter_queue_name(queue)
    arguments: dict[str, Any] = {"x-queue-type": queue_type}
    main = dict(arguments)
    if single_active_consumer:
        main["x-single-active-consumer"] = True
    if queue_type == "quorum" and delivery_limit:
        main.update(
            {
                "x-delivery-limit": delivery_limit,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": dead_letters,
            }
        )
    return QueueSpec(queue, main), QueueSpec(dead_letters, dict(arguments))


LEGACY_QUEUE_WARNING = (
    "queue %s was declared without a delivery limit (by an older eventbus); it works, but a consumer that "
    "crashes on a message would get it again forever. Re-create the queue to add the safety net "
    "(docs/reliability.md, 'Queues declared by older versions')."
)
SAFETY_NET_ARGUMENTS = ("x-delivery-limit", "x-dead-letter-exchange", "x-dead-letter-routing-key")


def without_safety_net(spec: QueueSpec) -> QueueSpec | None:
    """The spec an older eventbus declared the queue with (no delivery limit), or None if the same.

    Queues declared before the safety net existed cannot be re-declared with it (RabbitMQ
    refuses other arguments); the shells fall back to this spec and warn instead of failing.
    """
    if not any(name in spec.arguments for name in SAFETY_NET_ARGUMENTS):
        return None
    return QueueSpec(spec.name, {k: v for k, v in spec.arguments.items() if k not in SAFETY_NET_ARGUMENTS})


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
