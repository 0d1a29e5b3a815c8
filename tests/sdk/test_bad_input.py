"""Bad input is parked with its reason, byte for byte, and never blocks the valid messages around it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
import pika
import pytest

from eventbus import BusSettings, EventBus, EventContext, InputLimits, ParkMessage, RetryPolicy, SyncEventBus
from eventbus_contracts import REGISTRY, ConversationEndedV1

from ..conftest import RawBroker

pytestmark = pytest.mark.broker

CONTRACT = REGISTRY.get("chat.conversation.ended.v1")
EXAMPLE = CONTRACT.schema["examples"][0]
TYPE = CONTRACT.type


def _headers(**overrides: Any) -> dict[str, Any]:
    headers = {
        "cloudEvents_specversion": "1.0",
        "cloudEvents_id": str(uuid.uuid4()),
        "cloudEvents_source": "/tests/raw",
        "cloudEvents_type": TYPE,
        "cloudEvents_time": "2026-11-25T17:45:00Z",
    }
    headers.update(overrides)
    return {k: v for k, v in headers.items() if v is not None}


def _body(**changes: Any) -> bytes:
    return orjson.dumps({**EXAMPLE, **changes})


# (name, body, headers, content type, expected park reason)
BAD = [
    ("invalid json", b'{"conversation_id": "c1", ', _headers(), "application/json", "invalid_json"),
    ("invalid utf-8", b'{"conversation_id": "\xff\xfe"}', _headers(), "application/json", "invalid_json"),
    ("schema invalid", _body(participants=["only_one"]), _headers(), "application/json", "schema_invalid"),
    ("duplicate participants", _body(participants=["a", "a"]), _headers(), "application/json", "schema_invalid"),
    ("bad date-time", _body(ended_at="yesterday"), _headers(), "application/json", "schema_invalid"),
    ("extra field", _body(surprise=1), _headers(), "application/json", "schema_invalid"),
    ("missing id", _body(), _headers(cloudEvents_id=None), "application/json", "missing_attribute"),
    ("no headers at all", _body(), {}, "application/json", "missing_attribute"),
    ("wrong specversion", _body(), _headers(cloudEvents_specversion="0.3"), "application/json", "bad_specversion"),
    ("unsupported type", _body(), _headers(cloudEvents_type="context.candidates.updated.v1"), "application/json",
     "unsupported_event_type"),
    ("unknown type", _body(), _headers(cloudEvents_type="chat.nothing.v9"), "application/json",
     "unsupported_event_type"),
    ("wrong content type", _body(), _headers(), "text/plain", "unsupported_content_type"),
    ("too big", _body(conversation_id="c" * 70_000), _headers(), "application/json", "body_too_large"),
    ("too deep", b'{"conversation_id": ' + b"[" * 65 + b"]" * 65 + b"}", _headers(), "application/json", "too_deep"),
    ("duplicate key", _body()[:-1] + b', "message_count": 3}', _headers(), "application/json", "duplicate_key"),
    ("huge integer", _body()[:-1] + b', "x": 123456789012345678901234567890}', _headers(), "application/json",
     "number_out_of_range"),
    ("handler raises", _body(conversation_id="conv_handler_raises"), _headers(), "application/json", "handler_error"),
    ("handler parks", _body(conversation_id="conv_handler_parks"), _headers(), "application/json", "not_for_us"),
]


def _routing_key(settings: BusSettings) -> str:
    """A routing key only this test's queue is bound to.

    The ``chat`` exchange is shared: a queue bound with the plain event type also receives what
    every other publisher sends, which would make the counts here meaningless. The consumer still
    dispatches by the ``cloudEvents_type`` header, so the test exercises the same path.
    """
    return f"{TYPE}.{settings.service}"


def _subscribe(bus: EventBus | SyncEventBus, settings: BusSettings, handler: Any) -> None:
    # No retries: the handler failures here are meant to be parked on the first attempt.
    bus.subscribe(ConversationEndedV1, binding_keys=[_routing_key(settings)], retry=RetryPolicy.never())(handler)


LIMITS = InputLimits(max_body_bytes=64_000)  # so that "too big" needs only 70 kB


def _publish_all(raw: RawBroker, routing_key: str) -> tuple[list[str], list[str]]:
    """Valid, every bad kind, valid again; returns the valid conversation ids and the bad messages' ids."""
    good = ["conv_before", "conv_after"]
    properties = pika.BasicProperties(content_type="application/json", delivery_mode=2, headers=_headers())
    raw.publish("chat", routing_key, _body(conversation_id=good[0]), properties)
    ids = ["m-" + uuid.uuid4().hex for _ in BAD]
    for (_, body, headers, content_type, _), message_id in zip(BAD, ids, strict=True):
        raw.publish("chat", routing_key, body, pika.BasicProperties(
            content_type=content_type, headers=headers, message_id=message_id, delivery_mode=2))
    raw.publish("chat", routing_key, _body(conversation_id=good[1]), pika.BasicProperties(
        content_type="application/json", delivery_mode=2, headers=_headers()))
    return good, ids


def _check_dead_letters(raw: RawBroker, queue: str, routing_key: str, ids: list[str]) -> None:
    """Every bad kind parked once, byte for byte, with its reason. Handlers run side by side (up to
    the prefetch), so a handler failure may be parked after bad input that arrived later: the
    parked copies are put back in publish order by their message ids before the comparison."""
    parked = raw.get(queue + ".dlq", len(BAD), timeout=10)
    assert len(parked) == len(BAD)
    assert sorted(m.properties.message_id for m in parked) == sorted(ids)
    parked.sort(key=lambda m: ids.index(m.properties.message_id))
    assert raw.depth(queue + ".dlq") == 0  # nothing else got parked
    for (name, body, headers, content_type, reason), message in zip(BAD, parked, strict=True):
        assert message.body == body, name  # byte for byte
        got = message.headers
        assert got["eventbus-park-reason"] == reason, (name, got.get("eventbus-error"))
        assert got["eventbus-error"], name
        assert got["eventbus-original-exchange"] == "chat"
        assert got["eventbus-original-routing-key"] == routing_key
        assert got["eventbus-original-queue"] == queue
        assert got["eventbus-parked-at"].endswith("Z")
        for key, value in headers.items():  # the CloudEvents headers travel along unchanged
            assert got[key] == value, (name, key)
        assert message.properties.content_type == content_type
        assert message.properties.delivery_mode == 2
    handler_error = parked[-2].headers
    assert handler_error["eventbus-error-type"] == "builtins.RuntimeError"
    assert "RuntimeError: boom for conv_handler_raises" in handler_error["eventbus-error"]


def _handle(event: ConversationEndedV1, ctx: EventContext, seen: list[str]) -> None:
    if event.conversation_id == "conv_handler_raises":
        raise RuntimeError(f"boom for {event.conversation_id}")
    if event.conversation_id == "conv_handler_parks":
        raise ParkMessage("not_for_us")
    seen.append(event.conversation_id)


async def test_async_consumer_parks_every_bad_kind(settings: BusSettings, raw: RawBroker) -> None:
    bus = EventBus(settings.with_(limits=LIMITS))
    seen: list[str] = []

    async def handler(event: ConversationEndedV1, ctx: EventContext) -> None:
        _handle(event, ctx, seen)

    _subscribe(bus, settings, handler)
    queue = f"{settings.service}.{TYPE}"
    await bus.start()
    try:
        good, ids = _publish_all(raw, _routing_key(settings))
        for _ in range(300):
            if len(seen) >= 2 and raw.depth(queue + ".dlq") >= len(BAD):
                break
            await asyncio.sleep(0.05)
        assert sorted(seen) == sorted(good)
        _check_dead_letters(raw, queue, _routing_key(settings), ids)
    finally:
        await bus.close()


def test_sync_consumer_parks_every_bad_kind(settings: BusSettings, raw: RawBroker) -> None:
    seen: list[str] = []
    with SyncEventBus(settings.with_(limits=LIMITS)) as bus:
        _subscribe(bus, settings, lambda event, ctx: _handle(event, ctx, seen))
        bus.start()
        good, ids = _publish_all(raw, _routing_key(settings))
        queue = f"{settings.service}.{TYPE}"
        bus.run(until=lambda: len(seen) >= 2 and raw.depth(queue + ".dlq") >= len(BAD), timeout=15)
    assert sorted(seen) == sorted(good)
    _check_dead_letters(raw, queue, _routing_key(settings), ids)
