"""The lean client's login negotiation, ``basic.get`` decoding and blocked/flow handling, without a broker.

A TLS broker with client certificates is not needed to prove EXTERNAL: what the client must get
right is choosing the mechanism the URL asks for among those the broker offers and answering
``connection.start`` with the right response; the broker's side is RabbitMQ's.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pamqp import body as pbody
from pamqp import commands as spec
from pamqp import frame, header

from eventbus.transports._amqp import Connection, Message, Properties, PublishBlocked, login_response
from eventbus.transports._amqp._channel import Channel
from eventbus.transports._amqp._codec import FrameParser
from eventbus.transports._amqp._connection import Endpoint

from .test_amqp_codec import _FakeConnection as _CodecFakeConnection
from .test_amqp_codec import _unmarshal_all as _frames


def test_plain_answers_with_user_and_password() -> None:
    assert login_response("AMQPLAIN PLAIN", "PLAIN", "u", "p") == ("PLAIN", "\0u\0p")


def test_external_answers_with_an_empty_response_when_offered() -> None:
    assert login_response("PLAIN AMQPLAIN EXTERNAL", "external", "ignored", "ignored") == ("EXTERNAL", "")


@pytest.mark.parametrize(
    ("offered", "wanted", "error"),
    [
        ("PLAIN AMQPLAIN", "EXTERNAL", "offers no EXTERNAL login.*rabbitmq_auth_mechanism_ssl"),
        ("EXTERNAL", "PLAIN", "offers no PLAIN login"),
        ("PLAIN", "CRAM-MD5", "unsupported login mechanism"),
    ],
)
def test_a_mechanism_the_broker_does_not_offer_is_a_clear_error(offered: str, wanted: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        login_response(offered, wanted, "u", "p")


def test_the_url_chooses_the_mechanism() -> None:
    assert Endpoint.from_url("amqp://h").mechanism == "PLAIN"
    assert Endpoint.from_url("amqps://h?auth_mechanism=external&certfile=c.pem&keyfile=k.pem").mechanism == "EXTERNAL"
    assert Endpoint.from_url("amqps://h?auth=EXTERNAL").mechanism == "EXTERNAL"


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.aborted

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.aborted = True


async def _handshake_reply(mechanism: str, offered: str) -> tuple[Connection, list[Any]]:
    loop = asyncio.get_running_loop()
    connection = Connection(loop, user="u", password="p", vhost="/", heartbeat=0, client_properties={},
                            name="t", mechanism=mechanism)
    transport = _Transport()
    connection.connection_made(transport)  # type: ignore[arg-type]
    start = spec.Connection.Start(mechanisms=offered, locales="en_US")
    connection.data_received(frame.marshal(start, 0))
    connection._flush()
    return connection, _frames(b"".join(transport.written)[8:])  # after the protocol header


async def test_start_ok_carries_the_chosen_mechanism() -> None:
    _, sent = await _handshake_reply("EXTERNAL", "PLAIN AMQPLAIN EXTERNAL")
    (start_ok,) = sent
    assert isinstance(start_ok, spec.Connection.StartOk)
    assert (start_ok.mechanism, start_ok.response) == ("EXTERNAL", "")
    _, sent = await _handshake_reply("PLAIN", "PLAIN EXTERNAL")
    assert (sent[0].mechanism, sent[0].response) == ("PLAIN", "\0u\0p")


async def test_a_mechanism_not_offered_ends_the_handshake_with_the_reason() -> None:
    connection, sent = await _handshake_reply("EXTERNAL", "PLAIN AMQPLAIN")
    assert sent == [] and connection.is_closed
    assert "offers no EXTERNAL login" in str(connection.close_reason)


def test_basic_get_ok_is_assembled_like_a_delivery_with_the_remaining_count() -> None:
    events: list[Any] = []

    class Sink:
        def on_message(self, channel: int, message: Message) -> None:
            events.append(message)

        def on_method(self, channel: int, method: Any) -> None:
            events.append(method)

        def on_confirm(self, *args: Any) -> None: ...
        def on_heartbeat(self) -> None: ...

    body = b'{"a": 1}'
    wire = (
        frame.marshal(spec.Basic.GetOk(delivery_tag=9, redelivered=True, exchange="ex", routing_key="rk",
                                       message_count=4), 3)
        + frame.marshal(header.ContentHeader(0, len(body), spec.Basic.Properties(message_id="m9")), 3)
        + frame.marshal(pbody.ContentBody(body), 3)
        + frame.marshal(spec.Basic.GetEmpty(), 3)
    )
    parser = FrameParser(Sink())  # type: ignore[arg-type]
    for i in range(0, len(wire), 5):  # in any split
        parser.feed(wire[i : i + 5])
    message, empty = events
    assert (message.delivery_tag, message.redelivered, message.exchange, message.routing_key) == (9, True, "ex", "rk")
    assert (message.message_count, message.properties.message_id, message.body) == (4, "m9", body)
    assert isinstance(empty, spec.Basic.GetEmpty)


class _FakeConnection(_CodecFakeConnection):
    def __init__(self, loop: Any, when_blocked: str) -> None:
        super().__init__(loop)
        self.when_blocked = when_blocked


def _publish(channel: Channel, name: str) -> Any:
    return channel.publish([("x", "k", Properties(message_id=name), b"{}")])


async def test_waiting_holds_publishes_while_blocked_and_writes_them_in_order_after() -> None:
    connection = _FakeConnection(asyncio.get_running_loop(), "wait")
    channel = Channel(connection, 1)  # type: ignore[arg-type]
    channel.confirming = True
    connection.blocked = True
    first, second = _publish(channel, "a"), _publish(channel, "b")
    assert connection.sent == [] and not first.done.done()
    connection.blocked = False
    third = _publish(channel, "c")  # unblocked, but older publishes are still held: it queues behind them
    assert connection.sent == []
    channel.release()
    ids = [f.properties.message_id for f in _frames(b"".join(connection.sent)) if hasattr(f, "properties")]
    assert ids == ["a", "b", "c"]
    channel._on_confirm(3, True, True)
    for batch in (first, second, third):
        await asyncio.wait_for(batch.done, 1)
        assert batch.results == [None]


async def test_failing_fast_refuses_publishes_while_blocked_and_sends_nothing() -> None:
    connection = _FakeConnection(asyncio.get_running_loop(), "fail")
    channel = Channel(connection, 1)  # type: ignore[arg-type]
    channel.confirming = True
    connection.blocked, connection.blocked_reason = True, "low on memory"
    batch = _publish(channel, "a")
    assert batch.done.done() and connection.sent == []
    (error,) = batch.results
    assert isinstance(error, PublishBlocked) and "low on memory" in str(error)
    connection.blocked = False
    assert _publish(channel, "b").done.done() is False and len(connection.sent) == 1


async def test_channel_flow_pauses_publishing_on_that_channel_only() -> None:
    connection = _FakeConnection(asyncio.get_running_loop(), "fail")
    channel = Channel(connection, 1)  # type: ignore[arg-type]
    channel._on_method(spec.Channel.Flow(active=False))
    flow_ok = _frames(connection.sent.pop())
    assert isinstance(flow_ok[0], spec.Channel.FlowOk) and flow_ok[0].active is False
    (error,) = _publish(channel, "a").results
    assert isinstance(error, PublishBlocked) and "channel.flow" in str(error)
    channel._on_method(spec.Channel.Flow(active=True))
    connection.sent.clear()
    _publish(channel, "b")
    assert len(connection.sent) == 1


async def test_a_held_publish_fails_with_the_channel_when_it_closes() -> None:
    connection = _FakeConnection(asyncio.get_running_loop(), "wait")
    channel = Channel(connection, 1)  # type: ignore[arg-type]
    channel.confirming = True
    connection.blocked = True
    batch = _publish(channel, "a")
    channel._on_method(spec.Channel.Close(reply_code=320, reply_text="CONNECTION_FORCED"))
    await asyncio.wait_for(batch.done, 1)
    assert "CONNECTION_FORCED" in str(batch.results[0])
    assert len(connection.sent) == 1  # only the close-ok: the held publish was never written


async def test_failing_fast_also_fails_what_was_sent_before_the_broker_said_blocked() -> None:
    connection = _FakeConnection(asyncio.get_running_loop(), "fail")
    channel = Channel(connection, 1)  # type: ignore[arg-type]
    channel.confirming = True
    sent = _publish(channel, "a")  # written: the broker reads it, then blocks the connection
    connection.blocked = True
    channel.refuse_unconfirmed()
    await asyncio.wait_for(sent.done, 1)
    (error,) = sent.results
    assert isinstance(error, PublishBlocked) and "may still be stored" in str(error)
    channel._on_confirm(1, False, True)  # the late confirm after the alarm changes nothing
    assert sent.results == [error] and sent.remaining == 0
