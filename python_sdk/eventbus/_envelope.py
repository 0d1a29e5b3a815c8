"""CloudEvents 1.0 over AMQP 0-9-1: building and reading the envelope, with no I/O.

We write binary content mode: the body is the event ``data`` as JSON and the attributes travel
as ``cloudEvents_<name>`` headers (the JMS-safe form of the CloudEvents AMQP binding, which
RabbitMQ 4 maps onto AMQP 1.0 application-properties). AMQP basic properties mirror them so
plain AMQP tooling sees useful ids and types.

We read what other producers write, too: ``cloudEvents:`` (the AMQP binding's original
prefix), ``ce-``/``ce_`` (Knative eventing-rabbitmq and the CloudEvents Python SDK), and
structured mode (``application/cloudevents+json`` with the whole event in the body).
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from ._exceptions import EnvelopeError
from ._limits import load_json

__all__ = [
    "HEADER_PREFIX",
    "SPECVERSION",
    "CloudEventAttributes",
    "IncomingEnvelope",
    "binary_attribute",
    "build_headers",
    "format_time",
    "ordering_extensions",
    "parse_envelope",
    "parse_sequence",
    "put_binary_headers",
    "read_envelope",
]

SPECVERSION = "1.0"
HEADER_PREFIX = "cloudEvents_"
JSON_CONTENT_TYPE = "application/json"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"

# Prefixes other producers use for the same attributes, in the order we trust them.
_READ_PREFIXES = ("cloudEvents_", "cloudEvents:", "ce-", "ce_")
_REQUIRED = ("specversion", "id", "source", "type")
_KNOWN = frozenset({"specversion", "id", "source", "type", "time", "subject", "dataschema", "datacontenttype"})
# CloudEvents' Partitioning and Sequence extensions: the ordering key of an event and its place
# among the events of that key (docs/ordering.md).
PARTITION_KEY = "partitionkey"
SEQUENCE = "sequence"
# Sequences are written zero-padded to this many digits (room for any unsigned 64-bit number), so
# comparing them as strings, as the Sequence extension asks, gives the numeric order too.
SEQUENCE_DIGITS = 20
# W3C trace context travels unprefixed so tracers in every language find it.
TRACE_HEADERS = ("traceparent", "tracestate")


def format_time(moment: datetime) -> str:
    """RFC 3339 with a ``Z`` for UTC, the form every CloudEvents SDK parses."""
    zone = moment.tzinfo
    if zone is None:
        raise ValueError("CloudEvents time must be timezone-aware")
    if zone is not UTC:  # astimezone(UTC) would return the same moment
        moment = moment.astimezone(UTC)
    return moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class CloudEventAttributes:
    """The context attributes of one event, as strings, exactly as they go on the wire."""

    id: str
    source: str
    type: str
    time: str
    subject: str | None = None
    dataschema: str | None = None
    datacontenttype: str = JSON_CONTENT_TYPE
    specversion: str = SPECVERSION
    extensions: Mapping[str, str] = field(default_factory=dict)


def build_headers(attrs: CloudEventAttributes, trace: Mapping[str, str] | None = None) -> dict[str, Any]:
    """AMQP headers for binary mode; ``datacontenttype`` goes in the content_type property instead."""
    headers: dict[str, Any] = {}
    put_binary_headers(
        headers, attrs.id, attrs.source, attrs.type, attrs.time, attrs.subject, attrs.dataschema,
        specversion=attrs.specversion, extensions=attrs.extensions, trace=trace,
    )
    return headers


def put_binary_headers(
    headers: dict[str, Any],
    event_id: str,
    source: str,
    event_type: str,
    time: str,
    subject: str | None,
    dataschema: str | None,
    *,
    specversion: str = SPECVERSION,
    extensions: Mapping[str, str] | None = None,
    trace: Mapping[str, str] | None = None,
) -> None:
    """Write the binary-mode headers of these attributes into ``headers``, in wire order.

    What ``build_headers`` does, without a ``CloudEventAttributes`` in between, for the publish path.
    """
    headers["cloudEvents_specversion"] = specversion
    headers["cloudEvents_id"] = event_id
    headers["cloudEvents_source"] = source
    headers["cloudEvents_type"] = event_type
    headers["cloudEvents_time"] = time
    if subject is not None:
        headers["cloudEvents_subject"] = subject
    if dataschema:
        headers["cloudEvents_dataschema"] = dataschema
    if extensions:
        for name, value in extensions.items():
            headers[HEADER_PREFIX + name] = value
    if trace:
        for name in TRACE_HEADERS:
            if name in trace:
                headers[name] = trace[name]


@dataclass(frozen=True, slots=True)
class IncomingEnvelope:
    """A delivery understood as a CloudEvent: its attributes and the raw JSON ``data`` bytes."""

    attributes: CloudEventAttributes
    data: bytes
    structured: bool = False


def _text(value: Any, name: str = "") -> str:
    if name == "time" and isinstance(value, int) and not isinstance(value, bool):
        # The CloudEvents AMQP binding may send time as an AMQP timestamp in milliseconds.
        return format_time(datetime.fromtimestamp(value / 1000, UTC))
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, datetime):
        return format_time(value if value.tzinfo else value.replace(tzinfo=UTC))
    return str(value)


def binary_attribute(headers: Mapping[str, Any], name: str) -> str | None:
    """One binary-mode attribute (``id``, ``type`` …) under whichever prefix carries it, before the
    envelope is parsed (the revocation check, the report of a step too broken to read)."""
    for prefix in _READ_PREFIXES:
        value = headers.get(prefix + name)
        if value is not None:
            return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)
    return None


@functools.lru_cache(maxsize=1024)
def _attribute_name(header: str) -> str | None:
    """The CloudEvents attribute a header carries (``cloudEvents_id`` → ``id``), None for other headers.

    Cached: every delivery carries the same few header names, and the cache is bounded against
    producers that invent new ones.
    """
    for prefix in _READ_PREFIXES:
        if header.startswith(prefix):
            return header[len(prefix) :].lower()
    return None


def _media_type(content_type: str | None) -> str | None:
    if content_type == JSON_CONTENT_TYPE:  # what we write, already in normal form
        return JSON_CONTENT_TYPE
    if content_type is None:
        return None
    return content_type.split(";", 1)[0].strip().lower()


def _is_json(media_type: str) -> bool:
    return media_type == JSON_CONTENT_TYPE or (media_type.startswith("application/") and media_type.endswith("+json"))


def _check_attributes(found: dict[str, str]) -> None:
    missing = [name for name in _REQUIRED if not found.get(name)]
    if missing:
        raise EnvelopeError("missing_attribute", f"CloudEvents attribute(s) missing: {', '.join(missing)}")
    if found["specversion"] != SPECVERSION:
        raise EnvelopeError("bad_specversion", f"unsupported CloudEvents specversion {found['specversion']!r}")


def _attributes_from(found: dict[str, str], content_type: str) -> CloudEventAttributes:
    return CloudEventAttributes(
        id=found["id"],
        source=found["source"],
        type=found["type"],
        time=found.get("time", ""),
        subject=found.get("subject"),
        dataschema=found.get("dataschema"),
        datacontenttype=content_type,
        specversion=found["specversion"],
        extensions={k: v for k, v in found.items() if k not in _KNOWN},
    )


def parse_envelope(headers: Mapping[str, Any] | None, content_type: str | None, body: bytes) -> IncomingEnvelope:
    """Read the CloudEvent out of one delivery, in whichever supported form it came.

    Raises ``EnvelopeError`` with a stable ``reason`` for anything that cannot be an event of
    ours; the caller parks such deliveries instead of retrying them.
    """
    found, media_type, data, structured = read_envelope(headers, content_type, body)
    return IncomingEnvelope(attributes=_attributes_from(found, media_type), data=data, structured=structured)


def read_envelope(
    headers: Mapping[str, Any] | None, content_type: str | None, body: bytes
) -> tuple[dict[str, str], str, bytes, bool]:
    """``parse_envelope`` before the wrapping: (attributes by name, media type, data, structured?).

    Every check has been made, so ``id``, ``source``, ``type`` and ``specversion`` are present.
    The consumer reads its few attributes from here, building no ``CloudEventAttributes``.
    """
    media_type = _media_type(content_type)
    if media_type == STRUCTURED_CONTENT_TYPE:
        return _read_structured(body)
    found: dict[str, str] = {}
    if headers:
        for key, value in headers.items():
            name = _attribute_name(key)
            if name is not None:
                # the first header to name an attribute wins, whichever prefix it used
                found.setdefault(name, value if type(value) is str else _text(value, name))
    if media_type is None:
        # CloudEvents lets binary-mode producers carry datacontenttype as an attribute instead.
        media_type = _media_type(found.get("datacontenttype")) or JSON_CONTENT_TYPE
    if not _is_json(media_type):
        raise EnvelopeError("unsupported_content_type", f"content type {content_type!r} is not JSON")
    _check_attributes(found)
    return found, media_type, body, False


def _read_structured(body: bytes) -> tuple[dict[str, str], str, bytes, bool]:
    event = load_json(body)  # size and depth were checked by the caller; keys and numbers here
    if not isinstance(event, dict):
        raise EnvelopeError("invalid_envelope", "structured CloudEvent is not a JSON object")
    media_type = _media_type(event.get("datacontenttype")) or JSON_CONTENT_TYPE
    if not _is_json(media_type):
        raise EnvelopeError("unsupported_content_type", f"datacontenttype {media_type!r} is not JSON")
    if "data_base64" in event:
        data = base64.b64decode(event["data_base64"])
    elif "data" in event:
        data = orjson.dumps(event["data"])
    else:
        raise EnvelopeError("invalid_envelope", "structured CloudEvent has no data")
    found = {k: _text(v, k) for k, v in event.items() if k not in ("data", "data_base64") and v is not None}
    _check_attributes(found)
    return found, media_type, data, True


def ordering_extensions(partition_key: str | None, sequence: int | None) -> dict[str, str]:
    """The ``partitionkey`` and ``sequence`` extension attributes of an event, as they go on the wire.

    A sequence is a non-negative integer below 10**20, written as 20 decimal digits.
    """
    extensions: dict[str, str] = {}
    if partition_key is not None:
        if not isinstance(partition_key, str) or not partition_key:
            raise ValueError(f"partition_key must be a non-empty string, got {partition_key!r}")
        extensions[PARTITION_KEY] = partition_key
    if sequence is not None:
        if isinstance(sequence, bool) or not isinstance(sequence, int) or not 0 <= sequence < 10**SEQUENCE_DIGITS:
            raise ValueError(f"sequence must be an integer from 0 to 10**{SEQUENCE_DIGITS} - 1, got {sequence!r}")
        extensions[SEQUENCE] = f"{sequence:0{SEQUENCE_DIGITS}d}"
    return extensions


def parse_sequence(text: str | None) -> int | None:
    """A ``sequence`` attribute as a number (padded or not), or None when absent or not decimal digits."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    return int(text)
