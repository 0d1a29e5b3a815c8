"""One event turned into what goes on the wire, with no broker (``_outgoing.py``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from eventbus import parse_envelope
from eventbus._envelope import CloudEventAttributes, build_headers
from eventbus._outgoing import build_outgoing, random_event_id
from eventbus_contracts import REGISTRY

CONTRACT = REGISTRY.get("chat.conversation.ended.v1")
EVENT = CONTRACT.validate_python(CONTRACT.schema["examples"][0])


def test_random_event_ids_are_what_uuid4_makes_of_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    for sample in (b"\x00" * 16, b"\xff" * 16, bytes(range(16)), *(bytes.fromhex(uuid.uuid4().hex) for _ in range(50))):
        monkeypatch.setattr("eventbus._outgoing.urandom", lambda n, sample=sample: sample[:n])
        assert random_event_id() == str(uuid.UUID(bytes=sample, version=4))


def test_random_event_ids_are_version_4_and_differ() -> None:
    ids = {random_event_id() for _ in range(1000)}
    assert len(ids) == 1000
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)


def test_headers_are_the_envelope_headers_after_the_callers_own_in_their_order() -> None:
    moment = datetime(2026, 11, 25, 18, 45, 1, 250, tzinfo=timezone(timedelta(hours=1)))
    caller = {"traceparent": "00-abc-def-01", "x-tenant": "t1", "cloudEvents_id": "overwritten", "tracestate": "a=1"}
    message = build_outgoing(EVENT, source="/services/chat", subject="conv_1", event_id="e-1", time=moment,
                             headers=caller)
    attrs = CloudEventAttributes(id="e-1", source="/services/chat", type=CONTRACT.type,
                                 time="2026-11-25T17:45:01.000250Z", subject="conv_1",
                                 dataschema=CONTRACT.schema_id)
    expected = dict(caller)
    expected.update(build_headers(attrs, trace=caller))
    assert list(message.headers.items()) == list(expected.items())
    assert message.message_id == "e-1" and message.app_id == "/services/chat"
    assert orjson.loads(message.body) == CONTRACT.schema["examples"][0]
    read = parse_envelope(message.headers, message.content_type, message.body).attributes
    assert (read.id, read.type, read.time, read.subject) == ("e-1", CONTRACT.type, attrs.time, "conv_1")


def test_the_amqp_timestamp_is_the_publish_time_not_the_events_time() -> None:
    before = datetime.now(UTC)
    message = build_outgoing(EVENT, source="/s", time=datetime(2020, 1, 1, tzinfo=UTC))
    assert before <= message.timestamp <= datetime.now(UTC)
    assert message.headers["cloudEvents_time"] == "2020-01-01T00:00:00Z"


def test_without_subject_or_caller_headers_only_the_envelope_goes_out() -> None:
    message = build_outgoing(EVENT, source="/s", time=datetime(2026, 1, 1, tzinfo=UTC))
    assert list(message.headers) == ["cloudEvents_specversion", "cloudEvents_id", "cloudEvents_source",
                                     "cloudEvents_type", "cloudEvents_time", "cloudEvents_dataschema"]
    assert message.headers["cloudEvents_time"] == "2026-01-01T00:00:00Z"
    assert uuid.UUID(message.message_id).version == 4
