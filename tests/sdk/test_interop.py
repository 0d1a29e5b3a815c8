"""The wire format is the one DESIGN section 2 fixes: raw AMQP clients and the CloudEvents SDK agree."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pika
import pytest
from cloudevents.core.bindings import amqp as ce_amqp
from cloudevents.core.bindings import rabbitmq as ce_rabbitmq
from cloudevents.core.v1.event import CloudEvent

from eventbus import BusSettings, EventBus, SyncEventBus
from eventbus_contracts import REGISTRY, ConversationEndedV1

from ..conftest import RawBroker
from ._collect import AsyncCollector

pytestmark = pytest.mark.broker

CONTRACT = REGISTRY.get("chat.conversation.ended.v1")
EXAMPLE = CONTRACT.schema["examples"][0]


def _sdk_message(settings: BusSettings, raw: RawBroker) -> tuple[str, Any]:
    tap = raw.declare_tap("chat", CONTRACT.type)
    with SyncEventBus(settings) as bus:
        event_id = bus.publish(CONTRACT.validate_python(EXAMPLE), subject="conv_8f14e45f",
                               headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
    messages = raw.find(tap, event_id)
    assert len(messages) == 1
    return event_id, messages[0]


def test_sdk_message_read_by_raw_pika_has_exactly_the_design_headers(settings: BusSettings, raw: RawBroker) -> None:
    event_id, message = _sdk_message(settings, raw)
    headers = message.headers
    assert set(headers) == {
        "cloudEvents_specversion", "cloudEvents_id", "cloudEvents_source", "cloudEvents_type", "cloudEvents_time",
        "cloudEvents_subject", "cloudEvents_dataschema", "traceparent",
    }
    assert headers["cloudEvents_specversion"] == "1.0"
    assert headers["cloudEvents_id"] == event_id
    assert headers["cloudEvents_source"] == settings.source
    assert headers["cloudEvents_type"] == "chat.conversation.ended.v1"
    assert headers["cloudEvents_subject"] == "conv_8f14e45f"
    assert headers["cloudEvents_dataschema"] == CONTRACT.schema["$id"]
    assert headers["traceparent"].startswith("00-0af7651916cd43dd")
    sent = datetime.fromisoformat(headers["cloudEvents_time"])
    assert headers["cloudEvents_time"].endswith("Z") and abs((datetime.now(UTC) - sent).total_seconds()) < 60
    assert all(isinstance(v, str) for v in headers.values())
    props = message.properties
    assert props.content_type == "application/json"
    assert props.delivery_mode == 2
    assert props.message_id == event_id
    assert props.type == "chat.conversation.ended.v1"
    assert props.app_id == settings.source
    assert abs(props.timestamp - sent.timestamp()) < 2
    assert message.exchange == "chat" and message.routing_key == "chat.conversation.ended.v1"
    assert orjson.loads(message.body) == EXAMPLE


def test_cloudevents_sdk_reads_an_sdk_message(settings: BusSettings, raw: RawBroker) -> None:
    event_id, message = _sdk_message(settings, raw)
    amqp_message = ce_amqp.AMQPMessage(
        properties={"content-type": message.properties.content_type},
        application_properties=message.headers,
        application_data=message.body,
    )
    event = ce_amqp.from_binary_event(amqp_message)
    attributes = event.get_attributes()
    assert attributes["id"] == event_id
    assert attributes["specversion"] == "1.0"
    assert attributes["source"] == settings.source
    assert attributes["type"] == "chat.conversation.ended.v1"
    assert attributes["subject"] == "conv_8f14e45f"
    assert attributes["dataschema"] == CONTRACT.schema["$id"]
    assert attributes["datacontenttype"] == "application/json"
    assert isinstance(attributes["time"], datetime)
    assert event.get_data() == EXAMPLE


def _cloudevent(data: dict[str, Any]) -> CloudEvent:
    return CloudEvent(
        attributes={
            "id": str(uuid.uuid4()), "source": "https://chat.example/backend", "type": CONTRACT.type,
            "specversion": "1.0", "time": datetime(2026, 11, 25, 17, 42, 30, tzinfo=UTC),
            "subject": data["conversation_id"], "datacontenttype": "application/json",
        },
        data=data,
    )


async def test_sdk_consumes_what_other_producers_write(settings: BusSettings, raw: RawBroker) -> None:
    """Hand-written headers, the CloudEvents SDK's AMQP and RabbitMQ bindings, and structured mode."""
    bus = EventBus(settings)
    sent: dict[str, str] = {}  # filled before each publish: the exchange is shared with other publishers
    collector = AsyncCollector(bus, ConversationEndedV1, accept=lambda event, ctx: ctx.id in sent)
    await bus.start()
    try:
        # 1. a plain pika producer writing the headers by hand
        hand_id = str(uuid.uuid4())
        sent[hand_id] = "conv_by_hand"
        raw.publish("chat", CONTRACT.type, orjson.dumps({**EXAMPLE, "conversation_id": "conv_by_hand"}),
                    pika.BasicProperties(content_type="application/json", delivery_mode=2, headers={
                        "cloudEvents_specversion": "1.0", "cloudEvents_id": hand_id,
                        "cloudEvents_source": "/node/backend", "cloudEvents_type": CONTRACT.type,
                        "cloudEvents_time": "2026-11-25T17:42:30Z"}))
        # 2. CloudEvents SDK, AMQP binding (cloudEvents_ prefix, time as an AMQP timestamp in ms)
        event = _cloudevent({**EXAMPLE, "conversation_id": "conv_ce_amqp"})
        sent[event.get_attributes()["id"]] = "conv_ce_amqp"
        message = ce_amqp.to_binary_event(event)
        raw.publish("chat", CONTRACT.type, message.application_data, pika.BasicProperties(
            content_type=message.properties["content-type"], headers=message.application_properties))
        # 3. CloudEvents SDK, RabbitMQ binding (ce- headers, as Knative eventing-rabbitmq writes)
        event = _cloudevent({**EXAMPLE, "conversation_id": "conv_ce_rabbitmq"})
        sent[event.get_attributes()["id"]] = "conv_ce_rabbitmq"
        rabbit = ce_rabbitmq.to_binary_event(event)
        raw.publish("chat", CONTRACT.type, rabbit.body, pika.BasicProperties(
            content_type=rabbit.content_type, headers=rabbit.headers))
        # 4. structured mode: the whole CloudEvent in the body
        event = _cloudevent({**EXAMPLE, "conversation_id": "conv_structured"})
        sent[event.get_attributes()["id"]] = "conv_structured"
        structured = ce_rabbitmq.to_structured_event(event)
        raw.publish("chat", CONTRACT.type, structured.body, pika.BasicProperties(
            content_type=structured.content_type, headers=structured.headers))
        received = await collector.wait_for(4)
    finally:
        await bus.close()
    got = {ctx.id: (event, ctx) for event, ctx in received}
    assert set(got) == set(sent)
    for event_id, conversation_id in sent.items():
        event, ctx = got[event_id]
        assert event.conversation_id == conversation_id
        assert event.participants == EXAMPLE["participants"]
        assert ctx.type == CONTRACT.type
        assert ctx.time == datetime(2026, 11, 25, 17, 42, 30, tzinfo=UTC)
    assert got[next(i for i, c in sent.items() if c == "conv_ce_rabbitmq")][1].subject == "conv_ce_rabbitmq"
    assert raw.depth(f"{settings.service}.{CONTRACT.type}.dlq") == 0
