"""``_settlement.plan_failure`` with no broker: the one place that turns a failed or undecodable
delivery into the copy to publish (retry through the delay queues, or park to the DLQ)."""

from __future__ import annotations

from typing import Any

import orjson

from eventbus import ExponentialBackoff, ParkMessage, RetryPolicy
from eventbus._delay import delay_route
from eventbus._dispatch import Delivery, QueueDispatcher, Subscription
from eventbus._parking import ParkReason
from eventbus._retry import Retry
from eventbus._settlement import after_republish, plan_failure
from eventbus.transports import Properties
from eventbus_contracts import REGISTRY

CONTRACT = REGISTRY.get("chat.conversation.ended.v1")
HEADERS = {"cloudEvents_id": "e-1", "cloudEvents_type": CONTRACT.type, "x-death": [{"count": 1}]}
DELIVERY = Delivery(orjson.dumps(CONTRACT.schema["examples"][0]), HEADERS, "application/json", CONTRACT.exchange,
                    CONTRACT.routing_key, redelivered=False)
PROPERTIES = Properties(content_type="application/json", message_id="e-1", message_type=CONTRACT.type,
                        app_id="/tests", delivery_mode=1, headers=HEADERS)
EXACT = RetryPolicy(max_attempts=3, backoff=ExponentialBackoff(first=2, factor=2, maximum=60, jitter=0))


def _noop(event: Any) -> None:
    return None


DISPATCHER = QueueDispatcher("svc.q", [Subscription(CONTRACT, _noop, "svc.q", (CONTRACT.type,), False)])


def test_a_retryable_failure_becomes_a_delayed_copy_back_to_the_same_queue() -> None:
    plan = plan_failure(DISPATCHER, DELIVERY, PROPERTIES, ConnectionError("away"), attempt=1, retry=EXACT)
    assert plan.decision == Retry(2.0, 2) and plan.delayed
    route = delay_route(20, "svc.q")
    assert (plan.exchange, plan.routing_key) == (route.exchange, route.routing_key)
    assert plan.body == DELIVERY.body
    headers = plan.properties.headers or {}
    assert headers["eventbus-attempt"] == 2 and headers["eventbus-retry-delay-ms"] == 2000
    assert headers["cloudEvents_id"] == "e-1" and "x-death" not in headers
    assert (plan.properties.message_id, plan.properties.delivery_mode) == ("e-1", 2)  # persistent copy


def test_the_last_attempt_and_a_park_request_go_to_the_dlq() -> None:
    last = plan_failure(DISPATCHER, DELIVERY, PROPERTIES, ConnectionError("away"), attempt=3, retry=EXACT)
    asked = plan_failure(DISPATCHER, DELIVERY, PROPERTIES, ParkMessage("bad input"), attempt=1, retry=EXACT)
    for plan in (last, asked):
        assert (plan.exchange, plan.routing_key, plan.delayed) == ("", "svc.q.dlq", False)
        assert isinstance(plan.decision, ParkReason)
    assert (last.properties.headers or {})["eventbus-attempt"] == 3
    assert (asked.properties.headers or {})["eventbus-park-reason"] == "bad input"


def test_an_undecodable_delivery_is_parked_without_asking_a_policy() -> None:
    reason = ParkReason("invalid_json", "not JSON", "EnvelopeError")
    plan = plan_failure(DISPATCHER, DELIVERY, PROPERTIES, reason)
    assert plan.routing_key == "svc.q.dlq"
    assert (plan.properties.headers or {})["eventbus-park-reason"] == "invalid_json"


def test_ack_only_after_the_copy_is_confirmed() -> None:
    assert after_republish(None) == "ack"
    assert after_republish(TimeoutError()) == "requeue"
