"""``QueueDispatcher.prepare`` with no broker: what it hands a handler, and what it parks and why."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from eventbus import EnvelopeError, EventContext, parse_envelope
from eventbus._dispatch import Delivery, QueueDispatcher, Ready, Subscription
from eventbus._parking import ParkReason
from eventbus_contracts import REGISTRY

CONTRACT = REGISTRY.get("chat.conversation.ended.v1")
BODY = orjson.dumps(CONTRACT.schema["examples"][0])
BASE = {"specversion": "1.0", "id": "e-1", "source": "/tests", "type": CONTRACT.type}


async def _handler(event: Any, context: EventContext) -> None:
    return None


DISPATCHER = QueueDispatcher(
    "q", [Subscription(contract=CONTRACT, handler=_handler, queue="q", binding_keys=(CONTRACT.type,),
                       wants_context=True)]
)


def _binary(prefix: str = "cloudEvents_", **attributes: Any) -> dict[str, Any]:
    return {prefix + k: v for k, v in {**BASE, **attributes}.items() if v is not None}


def _structured(**attributes: Any) -> bytes:
    return orjson.dumps({**BASE, **attributes, "data": CONTRACT.schema["examples"][0]})


# (headers, content type, body)
CASES = [
    (_binary(), "application/json", BODY),
    (_binary(time="2026-11-25T17:45:00Z", subject="conv_1", dataschema=CONTRACT.schema_id), "application/json", BODY),
    (_binary("ce-", time=b"2026-11-25T17:45:00.5+01:00", traceid="7"), None, BODY),
    (_binary("cloudEvents:", time=1_764_092_700_000, subject=b"s"), "application/json; charset=utf-8", BODY),
    (_binary("ce_", time="not a time"), "application/vnd.acme+json", BODY),
    (_binary(time=datetime(2026, 11, 25, 17, 45)), "application/json", BODY),
    ({**_binary(id="first"), "ce-id": "second", "traceparent": "00-a-b-01"}, "application/json", BODY),
    ({}, "application/cloudevents+json", _structured(time="2026-11-25T17:45:00Z", subject="conv_1")),
    ({}, "application/cloudevents+json", orjson.dumps(
        {**BASE, "data_base64": base64.b64encode(BODY).decode(), "dataschema": "x"})),
]


@pytest.mark.parametrize(("headers", "content_type", "body"), CASES)
def test_the_context_holds_what_parse_envelope_reads(headers: dict[str, Any], content_type: str | None,
                                                     body: bytes) -> None:
    delivery = Delivery(body=body, headers=headers, content_type=content_type, exchange="chat",
                        routing_key=CONTRACT.type, redelivered=False)
    outcome = DISPATCHER.prepare(delivery)
    assert isinstance(outcome, Ready), outcome
    attrs = parse_envelope(headers, content_type, body).attributes
    expected_time = datetime.fromisoformat(attrs.time) if attrs.time and attrs.time != "not a time" else None
    assert outcome.context == EventContext(
        id=attrs.id, source=attrs.source, type=attrs.type, time=expected_time, subject=attrs.subject,
        dataschema=attrs.dataschema, headers=headers, redelivered=False, attempt=1, queue="q", exchange="chat",
        routing_key=CONTRACT.type,
    )
    assert outcome.event == CONTRACT.decode(BODY)


@pytest.mark.parametrize(
    ("headers", "content_type", "body"),
    [
        (_binary(id=""), "application/json", BODY),
        (_binary(specversion="0.3"), "application/json", BODY),
        (_binary(), "text/plain", BODY),
        ({}, "application/cloudevents+json", b"[1]"),
        ({}, "application/cloudevents+json", orjson.dumps(BASE)),
        ({}, "application/cloudevents+json", orjson.dumps({**BASE, "specversion": "0.3", "data": {}})),
        ({}, "application/cloudevents+json", orjson.dumps({"id": "x", "data": {}})),
        ({}, "application/cloudevents+json", _structured(datacontenttype="text/xml")),
    ],
)
def test_envelope_errors_park_with_parse_envelopes_reason_and_message(headers: dict[str, Any],
                                                                      content_type: str, body: bytes) -> None:
    outcome = DISPATCHER.prepare(Delivery(body=body, headers=headers, content_type=content_type, exchange="chat",
                                          routing_key=CONTRACT.type, redelivered=False))
    with pytest.raises(EnvelopeError) as caught:
        parse_envelope(headers, content_type, body)
    assert outcome == ParkReason(caught.value.reason, str(caught.value), "EnvelopeError")


def test_an_event_type_without_handler_is_parked_naming_the_ones_handled() -> None:
    outcome = DISPATCHER.prepare(Delivery(body=BODY, headers=_binary(type="x.y.v1"), content_type="application/json",
                                          exchange="chat", routing_key="x.y.v1", redelivered=True))
    assert outcome == ParkReason(
        "unsupported_event_type", f"event type 'x.y.v1' has no handler on queue q (handles: {CONTRACT.type})",
        "ContractError",
    )


def test_naive_datetime_headers_are_read_as_utc() -> None:
    headers = _binary(time=datetime(2026, 11, 25, 17, 45))
    outcome = DISPATCHER.prepare(Delivery(body=BODY, headers=headers, content_type="application/json",
                                          exchange="chat", routing_key=CONTRACT.type, redelivered=False))
    assert isinstance(outcome, Ready)
    assert outcome.context.time == datetime(2026, 11, 25, 17, 45, tzinfo=UTC)
