"""The CloudEvents envelope, written and read with no broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from eventbus import CloudEventAttributes, EnvelopeError, parse_envelope
from eventbus._envelope import build_headers, format_time

ATTRS = CloudEventAttributes(
    id="3f1c", source="/services/chat", type="chat.conversation.ended.v1", time="2026-11-25T17:45:00Z",
    subject="conv_1", dataschema="https://eventbus.example/contracts/chat/conversation.ended.v1.schema.json",
)


def test_binary_headers_are_exactly_the_design_set() -> None:
    headers = build_headers(ATTRS, trace={"traceparent": "00-abc-def-01", "other": "dropped"})
    assert headers == {
        "cloudEvents_specversion": "1.0",
        "cloudEvents_id": "3f1c",
        "cloudEvents_source": "/services/chat",
        "cloudEvents_type": "chat.conversation.ended.v1",
        "cloudEvents_time": "2026-11-25T17:45:00Z",
        "cloudEvents_subject": "conv_1",
        "cloudEvents_dataschema": "https://eventbus.example/contracts/chat/conversation.ended.v1.schema.json",
        "traceparent": "00-abc-def-01",
    }
    assert all(isinstance(v, str) for v in headers.values())


def test_optional_attributes_are_left_out_when_absent() -> None:
    headers = build_headers(CloudEventAttributes(id="1", source="/s", type="t", time="2026-01-01T00:00:00Z"))
    assert "cloudEvents_subject" not in headers and "cloudEvents_dataschema" not in headers


def test_time_is_rfc3339_utc_with_z() -> None:
    moment = datetime(2026, 11, 25, 18, 45, 1, tzinfo=timezone(timedelta(hours=1)))
    assert format_time(moment) == "2026-11-25T17:45:01Z"
    with pytest.raises(ValueError):
        format_time(datetime(2026, 1, 1))


@pytest.mark.parametrize("prefix", ["cloudEvents_", "cloudEvents:", "ce-", "ce_"])
def test_reads_every_supported_header_prefix(prefix: str) -> None:
    headers = {f"{prefix}{k}": v for k, v in {"specversion": "1.0", "id": "a", "source": "/x", "type": "t.v1",
                                               "time": "2026-11-25T17:45:00Z", "subject": "s", "traceid": "7"}.items()}
    envelope = parse_envelope(headers, "application/json", b'{"k": 1}')
    assert envelope.attributes.id == "a"
    assert envelope.attributes.type == "t.v1"
    assert envelope.attributes.subject == "s"
    assert envelope.attributes.extensions == {"traceid": "7"}
    assert envelope.data == b'{"k": 1}'
    assert not envelope.structured


def test_bytes_header_values_are_decoded() -> None:
    headers = {"cloudEvents_specversion": b"1.0", "cloudEvents_id": b"a", "cloudEvents_source": b"/x",
               "cloudEvents_type": b"t"}
    assert parse_envelope(headers, "application/json", b"{}").attributes.source == "/x"


def test_structured_mode_body_holds_the_whole_event() -> None:
    event = {"specversion": "1.0", "id": "a", "source": "/x", "type": "t", "datacontenttype": "application/json",
             "data": {"k": [1, 2]}}
    envelope = parse_envelope({}, "application/cloudevents+json; charset=utf-8", orjson.dumps(event))
    assert envelope.structured
    assert orjson.loads(envelope.data) == {"k": [1, 2]}
    assert envelope.attributes.id == "a"


@pytest.mark.parametrize(
    ("headers", "content_type", "body", "reason"),
    [
        ({"cloudEvents_id": "a", "cloudEvents_source": "/x", "cloudEvents_type": "t"}, "application/json", b"{}",
         "missing_attribute"),
        ({"cloudEvents_specversion": "0.3", "cloudEvents_id": "a", "cloudEvents_source": "/x",
          "cloudEvents_type": "t"}, "application/json", b"{}", "bad_specversion"),
        ({"cloudEvents_specversion": "1.0", "cloudEvents_id": "a", "cloudEvents_source": "/x",
          "cloudEvents_type": "t"}, "text/plain", b"{}", "unsupported_content_type"),
        (None, "application/json", b"{}", "missing_attribute"),
        ({}, "application/cloudevents+json", b"{not json", "invalid_json"),
        ({}, "application/cloudevents+json", b"[1]", "invalid_envelope"),
    ],
)
def test_bad_envelopes_have_stable_reasons(headers, content_type, body, reason) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EnvelopeError) as caught:
        parse_envelope(headers, content_type, body)
    assert caught.value.reason == reason


def test_missing_content_type_falls_back_to_the_datacontenttype_attribute() -> None:
    headers = {"ce-specversion": "1.0", "ce-id": "a", "ce-source": "/x", "ce-type": "t",
               "ce-datacontenttype": "text/xml"}
    with pytest.raises(EnvelopeError, match="not JSON"):
        parse_envelope(headers, None, b"<x/>")
    del headers["ce-datacontenttype"]
    assert parse_envelope(headers, None, b"{}").attributes.datacontenttype == "application/json"


def test_vendor_json_media_types_are_json() -> None:
    headers = {"ce-specversion": "1.0", "ce-id": "a", "ce-source": "/x", "ce-type": "t"}
    assert parse_envelope(headers, "application/vnd.acme+json", b"{}").attributes.datacontenttype == (
        "application/vnd.acme+json"
    )


def test_now_is_never_naive() -> None:
    assert format_time(datetime.now(UTC)).endswith("Z")


def test_the_first_header_naming_an_attribute_wins_whatever_its_prefix_or_case() -> None:
    headers = {"ce-id": "first", "cloudEvents_id": "second", "cloudEvents_ID": "third", "CE-id": "not a prefix",
               "cloudEvents_specversion": "1.0", "cloudEvents_Source": b"/x", "cloudEvents:type": "t",
               "cloudEvents_time": 1_764_092_700_000, "ce_MyExt": 7, "traceparent": "00-abc-def-01"}
    for _ in range(2):  # the second time the header names come from the cache
        attrs = parse_envelope(headers, "application/json", b"{}").attributes
        assert (attrs.id, attrs.source, attrs.type) == ("first", "/x", "t")
        assert attrs.time == "2025-11-25T17:45:00Z"
        assert attrs.extensions == {"myext": "7"}


@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON", " application/json ; charset=utf-8"])
def test_json_content_types_read_the_same_in_any_spelling(content_type: str) -> None:
    headers = {"ce-specversion": "1.0", "ce-id": "a", "ce-source": "/x", "ce-type": "t"}
    assert parse_envelope(headers, content_type, b"{}").attributes.datacontenttype == "application/json"
