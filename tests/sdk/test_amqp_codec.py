"""The lean AMQP codec (``_amqp/_codec.py``) against pamqp, the reference it replaces on the hot path."""

from __future__ import annotations

import datetime
import decimal
from typing import Any

import pytest
from pamqp import body as pbody
from pamqp import commands as spec
from pamqp import frame, header

from eventbus.transports._amqp._codec import (
    HEARTBEAT,
    FrameParser,
    Message,
    Properties,
    encode_ack,
    encode_nack,
    encode_publish,
)

HEADERS: dict[str, Any] = {
    "cloudEvents_specversion": "1.0",
    "cloudEvents_id": "3f1c1f4e-0000-4000-8000-000000000001",
    "small": 5,
    "short": -300,
    "unsigned": 60000,
    "int32": -70000,
    "uint32": 3_000_000_000,
    "big": 2**40,
    "flag": True,
    "ratio": 1.5,
    "nothing": None,
    "list": [1, "a", {"x": "y"}],
    "table": {"a": 1, "b": "two"},
    "when": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
    "raw": bytearray(b"\xff\x00"),
    "price": decimal.Decimal("1.25"),
    "ünïcode": "välue",
}
ALL_PROPERTIES = {
    "content_type": "application/json", "content_encoding": "gzip", "headers": HEADERS, "delivery_mode": 2,
    "priority": 3, "correlation_id": "corr", "reply_to": "reply", "expiration": "1000",
    "message_id": "m-1", "timestamp": datetime.datetime(2026, 12, 4, 4, 0, tzinfo=datetime.UTC),
    "message_type": "chat.conversation.ended.v1", "user_id": "guest", "app_id": "svc",
}


class Sink:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def on_message(self, channel: int, message: Message) -> None:
        self.events.append(("message", channel, message))

    def on_confirm(self, channel: int, delivery_tag: int, multiple: bool, ack: bool) -> None:
        self.events.append(("confirm", channel, delivery_tag, multiple, ack))

    def on_method(self, channel: int, method: Any) -> None:
        self.events.append(("method", channel, method))

    def on_heartbeat(self) -> None:
        self.events.append(("heartbeat",))


def _pamqp_properties(**values: Any) -> spec.Basic.Properties:
    return spec.Basic.Properties(**values)


def _unmarshal_all(data: bytes) -> list[Any]:
    frames = []
    while data:
        consumed, _, value = frame.unmarshal(data)
        frames.append(value)
        data = data[consumed:]
    return frames


def test_a_publish_reads_back_through_pamqp_with_every_property() -> None:
    body = b'{"conversation_id": "c1"}' * 40
    data = encode_publish(7, "chat", "chat.conversation.ended.v1", True, Properties(**ALL_PROPERTIES), body, 131_072)
    method, content_header, content = _unmarshal_all(data)
    assert isinstance(method, spec.Basic.Publish)
    assert (method.exchange, method.routing_key, method.mandatory) == ("chat", "chat.conversation.ended.v1", True)
    assert content_header.body_size == len(body)
    for name, value in ALL_PROPERTIES.items():
        assert getattr(content_header.properties, name) == value, name
    assert content.value == body


def test_a_body_over_frame_max_is_split_and_reassembled() -> None:
    body = bytes(range(256)) * 50  # 12 800 bytes
    data = encode_publish(1, "", "q", False, Properties(message_id="x"), body, 4096)
    frames = _unmarshal_all(data)
    assert [len(f.value) for f in frames[2:]] == [4088, 4088, 4088, 536]
    assert b"".join(f.value for f in frames[2:]) == body


def _delivery(channel: int, body: bytes, properties: spec.Basic.Properties, tag: int = 42) -> bytes:
    deliver = spec.Basic.Deliver(consumer_tag="ctag", delivery_tag=tag, redelivered=True, exchange="chat",
                                 routing_key="chat.x")
    parts = [frame.marshal(deliver, channel), frame.marshal(header.ContentHeader(0, len(body), properties), channel)]
    parts += [frame.marshal(pbody.ContentBody(body[i : i + 100]), channel) for i in range(0, len(body), 100)]
    return b"".join(parts)


def test_a_delivery_in_any_split_decodes_as_pamqp_wrote_it() -> None:
    body = b"x" * 250
    stream = _delivery(3, body, _pamqp_properties(**ALL_PROPERTIES))
    stream += encode_ack(3, 9, True) + encode_nack(3, 10, False, True) + HEARTBEAT
    stream += frame.marshal(spec.Channel.CloseOk(), 3)
    for split in range(1, len(stream)):
        sink = Sink()
        parser = FrameParser(sink)
        parser.feed(stream[:split])
        parser.feed(stream[split:])
        kinds = [event[0] for event in sink.events]
        assert kinds == ["message", "confirm", "confirm", "heartbeat", "method"], split
    _, channel, message = sink.events[0]
    assert channel == 3
    assert (message.consumer_tag, message.delivery_tag, message.redelivered) == ("ctag", 42, True)
    assert (message.exchange, message.routing_key, message.body) == ("chat", "chat.x", body)
    for name, value in ALL_PROPERTIES.items():
        assert getattr(message.properties, name) == value, name
    assert sink.events[1][1:] == (3, 9, True, True)
    assert sink.events[2][1:] == (3, 10, False, False)
    assert isinstance(sink.events[4][2], spec.Channel.CloseOk)


def test_invalid_utf8_in_a_header_string_stays_bytes_as_pamqp_keeps_it() -> None:
    properties = _pamqp_properties(headers={"bad": "ok"})
    data = _delivery(1, b"{}", properties).replace(b"badS\x00\x00\x00\x02ok", b"badS\x00\x00\x00\x02\xff\xfe")
    sink = Sink()
    FrameParser(sink).feed(data)
    assert sink.events[0][2].properties.headers == {"bad": b"\xff\xfe"}


def test_interleaved_channels_and_a_return() -> None:
    returned = spec.Basic.Return(reply_code=312, reply_text="NO_ROUTE", exchange="chat", routing_key="nowhere")
    props = _pamqp_properties(message_id="r-1")
    delivery = _delivery(1, b"a" * 150, props, tag=1)
    sink = Sink()
    parser = FrameParser(sink)
    parser.feed(frame.marshal(returned, 2) + delivery[:-1])  # channel 2's return opens; channel 1's almost done
    parser.feed(delivery[-1:])
    parser.feed(frame.marshal(header.ContentHeader(0, 1, props), 2) + frame.marshal(pbody.ContentBody(b"z"), 2))
    (_, channel1, message1), (_, channel2, message2) = sink.events
    assert (channel2, message2.reply_code, message2.reply_text, message2.routing_key) == (2, 312, "NO_ROUTE", "nowhere")
    assert message2.properties.message_id == "r-1" and message2.body == b"z"
    assert (channel1, message1.delivery_tag, message1.body) == (1, 1, b"a" * 150)


@pytest.mark.parametrize(
    "stream, error",
    [
        (encode_ack(1, 1, False)[:-1] + b"\x00", "end octet"),
        (frame.marshal(pbody.ContentBody(b"x"), 1), "without a header"),
        (b"\x09\x00\x00\x00\x00\x00\x00\xce", "unknown frame type"),
    ],
)
def test_a_broken_stream_is_an_error_not_a_guess(stream: bytes, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        FrameParser(Sink()).feed(stream)


def test_an_amqp_uri_reads_as_the_rabbitmq_uri_spec_says() -> None:
    from eventbus.transports._amqp._connection import Endpoint

    plain = Endpoint.from_url("amqp://")
    assert (plain.host, plain.port, plain.user, plain.password, plain.vhost, plain.tls) == (
        "localhost", 5672, "guest", "guest", "/", False)
    assert plain.heartbeat is None and plain.ssl_context() is None
    full = Endpoint.from_url("amqps://us%40er:p%2Fss@broker.example:5679/%2Fprod?heartbeat=7&no_verify_ssl=1")
    assert (full.host, full.port, full.user, full.password, full.vhost, full.heartbeat) == (
        "broker.example", 5679, "us@er", "p/ss", "/prod", 7)
    context = full.ssl_context()
    assert context is not None and context.check_hostname is False
    assert Endpoint.from_url("amqps://h").port == 5671 and Endpoint.from_url("amqps://h").ssl_context().check_hostname
    with pytest.raises(ValueError, match="not an AMQP URL"):
        Endpoint.from_url("http://h")


class _FakeConnection:
    """Just enough of ``Connection`` for a channel's bookkeeping, with the bytes it would send."""

    frame_max = 131_072
    blocked = False
    blocked_reason = ""
    when_blocked = "wait"

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self.name = "fake"
        self.sent: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def _release(self, channel: Any) -> None:
        pass


async def test_confirms_one_by_one_or_several_at_once_settle_their_batches_and_forget_the_tags() -> None:
    import asyncio

    from eventbus.transports._amqp._channel import Channel
    from eventbus.transports._amqp._errors import MessageNacked

    channel = Channel(_FakeConnection(asyncio.get_running_loop()), 1)  # type: ignore[arg-type]
    channel.confirming = True
    first = channel.publish([("x", "k", Properties(message_id=f"a{i}"), b"{}") for i in range(3)])  # tags 1-3
    second = channel.publish([("x", "k", Properties(message_id="b0"), b"{}")])  # tag 4
    channel._on_confirm(2, False, True)
    channel._on_confirm(1, False, False)
    assert first.remaining == 1 and len(channel._unconfirmed) == 2  # 1 and 2 left the deque
    channel._on_confirm(4, True, True)  # several at once: 3 and 4
    await asyncio.wait_for(first.done, 1)
    await asyncio.wait_for(second.done, 1)
    assert first.results[0].__class__ is MessageNacked and first.results[1:] == [None, None]
    assert second.results == [None] and not channel._pending and not channel._unconfirmed
    for tag in range(5, 1005):  # a broker that confirms one by one, forever
        channel.publish([("x", "k", Properties(message_id=str(tag)), b"{}")])
        channel._on_confirm(tag, False, True)
    assert not channel._pending and not channel._unconfirmed
