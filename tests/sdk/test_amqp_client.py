"""The lean AMQP client (``_amqp``) on the real broker: confirms, returns, refusals, consuming, closing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from pamqp import commands as spec

from eventbus.transports._amqp import (
    Channel,
    ChannelClosedError,
    Connection,
    ConnectionClosedError,
    Message,
    MessageReturned,
    Properties,
    connect,
)

pytestmark = pytest.mark.broker


@pytest.fixture
async def connection(broker_url: str) -> AsyncIterator[Connection]:
    conn = await connect(broker_url, client_properties={"connection_name": "test-amqp-client"})
    yield conn
    await conn.close()


@pytest.fixture
def names() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:10]
    return f"test-amqp.{suffix}", f"test-amqp-q.{suffix}"


@pytest.fixture
async def bound(connection: Connection, names: tuple[str, str]) -> AsyncIterator[tuple[Channel, str, str]]:
    """A confirm channel, and a private exchange with a queue bound to it by routing key ``k``."""
    exchange, queue = names
    channel = await connection.channel(publisher_confirms=True)
    await channel.exchange_declare(exchange, "topic", durable=False)
    await channel.queue_declare(queue, durable=False)
    await channel.queue_bind(queue, exchange, "k")
    yield channel, exchange, queue
    cleanup = await connection.channel()
    await cleanup.queue_unbind(queue, exchange, "k")
    await cleanup.queue_delete(queue)
    await cleanup.rpc(spec.Exchange.Delete(exchange=exchange))
    await cleanup.close()


async def test_a_batch_is_confirmed_and_a_return_fails_only_its_own_message(
    bound: tuple[Channel, str, str],
) -> None:
    channel, exchange, queue = bound
    batch = channel.publish([
        (exchange, "nowhere" if i % 250 == 7 else "k", Properties(message_id=f"m{i}"), b"%d" % i)
        for i in range(1000)
    ])
    await asyncio.wait_for(batch.done, 10)
    returned = [i for i, r in enumerate(batch.results) if isinstance(r, MessageReturned)]
    assert returned == [7, 257, 507, 757]
    assert all(r is None for i, r in enumerate(batch.results) if i not in returned)
    assert batch.remaining == 0
    declared = await channel.queue_declare(queue, durable=False, passive=True)
    assert declared.message_count == 996


async def test_deliveries_arrive_in_order_with_their_properties_and_acks_settle_them(
    connection: Connection, bound: tuple[Channel, str, str]
) -> None:
    publisher, exchange, queue = bound
    body = b"y" * 300_000  # larger than frame_max: several body frames each way
    batch = publisher.publish([
        (exchange, "k", Properties(message_id=f"m{i}", headers={"n": i, "s": "v"}, delivery_mode=2), body)
        for i in range(20)
    ])
    await asyncio.wait_for(batch.done, 10)
    consumer = await connection.channel()
    await consumer.basic_qos(5)
    got: list[Message] = []
    done = asyncio.get_running_loop().create_future()

    def on_message(message: Message) -> None:
        got.append(message)
        consumer.basic_ack(message.delivery_tag)
        if len(got) == 20:
            done.set_result(None)

    tag = await consumer.basic_consume(queue, on_message)
    await asyncio.wait_for(done, 10)
    await consumer.basic_cancel(tag)
    assert [m.properties.message_id for m in got] == [f"m{i}" for i in range(20)]
    assert all(m.body == body and m.properties.headers == {"n": i, "s": "v"} for i, m in enumerate(got))
    assert all(m.channel is consumer and m.exchange == exchange and m.routing_key == "k" for m in got)
    await asyncio.sleep(0.2)
    declared = await publisher.queue_declare(queue, durable=False, passive=True)
    assert declared.message_count == 0


async def test_a_refused_declaration_closes_only_its_channel_with_the_brokers_reason(
    connection: Connection, names: tuple[str, str]
) -> None:
    _, queue = names
    channel = await connection.channel()
    await channel.queue_declare(queue, durable=False)
    try:
        with pytest.raises(ChannelClosedError) as refused:
            await channel.queue_declare(queue, durable=True)
        assert refused.value.code == 406 and "inequivalent arg 'durable'" in refused.value.text
        assert channel.is_closed and not connection.is_closed
        with pytest.raises(ChannelClosedError):
            channel.basic_ack(1)
    finally:
        cleanup = await connection.channel()
        await cleanup.queue_delete(queue)


async def test_publishes_pending_on_a_channel_the_broker_closes_fail_with_its_reason(connection: Connection) -> None:
    channel = await connection.channel(publisher_confirms=True)
    batch = channel.publish([(f"no-such-exchange-{uuid.uuid4().hex}", "k", Properties(message_id="x"), b"{}")])
    await asyncio.wait_for(batch.done, 10)
    (error,) = batch.results
    assert isinstance(error, ChannelClosedError) and error.code == 404
    assert channel.is_closed and not connection.is_closed


async def test_a_wrong_password_is_the_brokers_refusal(broker_url: str) -> None:
    with pytest.raises(ConnectionClosedError) as refused:
        await connect(broker_url.replace("guest:guest", "guest:wrong"))
    assert refused.value.code == 403 and "ACCESS_REFUSED" in refused.value.text


async def test_closing_fails_what_still_waits(broker_url: str) -> None:
    connection = await connect(broker_url)
    channel = await connection.channel()
    await connection.close()
    assert connection.is_closed and channel.is_closed
    with pytest.raises(ConnectionClosedError):
        await connection.channel()


async def test_the_heartbeat_asked_for_is_the_urls_else_the_callers(broker_url: str) -> None:
    from_caller = await connect(broker_url, heartbeat=7)
    separator = "&" if "?" in broker_url else "?"
    from_url = await connect(f"{broker_url}{separator}heartbeat=3", heartbeat=7)
    try:
        assert (from_caller.heartbeat, from_url.heartbeat) == (7, 3)
    finally:
        await from_caller.close()
        await from_url.close()


async def test_basic_get_fetches_in_order_until_empty_and_a_nack_hands_everything_back(
    connection: Connection, bound: tuple[Channel, str, str]
) -> None:
    channel, exchange, queue = bound
    batch = channel.publish([(exchange, "k", Properties(message_id=f"m{i}"), b"%d" % i) for i in range(3)])
    await asyncio.wait_for(batch.done, 10)
    reader = await connection.channel()
    fetched = [await reader.basic_get(queue) for _ in range(3)]
    assert [m.properties.message_id for m in fetched if m] == ["m0", "m1", "m2"]
    assert [m.message_count for m in fetched if m] == [2, 1, 0]
    assert await reader.basic_get(queue) is None
    reader.basic_nack(0, multiple=True, requeue=True)
    again = await reader.basic_get(queue, no_ack=True)
    assert again is not None and again.properties.message_id == "m0" and again.redelivered
    assert await reader.queue_purge(queue) == 2
    assert await reader.basic_get(queue) is None
    await reader.close()


async def test_queue_delete_reports_what_it_held(connection: Connection, names: tuple[str, str]) -> None:
    _, queue = names
    channel = await connection.channel(publisher_confirms=True)
    await channel.queue_declare(queue, durable=False)
    await asyncio.wait_for(channel.publish([("", queue, Properties(), b"x")] * 2).done, 10)
    assert await channel.queue_delete(queue) == 2
    with pytest.raises(ChannelClosedError) as gone:
        await channel.queue_declare(queue, passive=True)
    assert gone.value.code == 404


async def test_an_exclusive_queue_is_locked_to_its_connection(broker_url: str, names: tuple[str, str]) -> None:
    _, queue = names
    holder, other = await connect(broker_url), await connect(broker_url)
    try:
        await (await holder.channel()).queue_declare(queue, durable=False, exclusive=True)
        with pytest.raises(ChannelClosedError) as locked:
            await (await other.channel()).queue_declare(queue, durable=False, exclusive=True)
        assert locked.value.code == 405 and "RESOURCE_LOCKED" in locked.value.text
        await holder.close()  # the broker deletes the queue with its connection: the lock is free
        await (await other.channel()).queue_declare(queue, durable=False, exclusive=True)
    finally:
        await holder.close()
        await other.close()


async def test_update_secret_is_answered_and_the_connection_goes_on(broker_url: str, names: tuple[str, str]) -> None:
    _, queue = names
    connection = await connect(broker_url)
    try:
        await asyncio.wait_for(connection.update_secret("guest", reason="token refreshed"), 10)
        channel = await connection.channel()
        await channel.queue_declare(queue, durable=False, exclusive=True)
        assert not connection.is_closed and connection._credentials[1] == "guest"
    finally:
        await connection.close()
    with pytest.raises(ConnectionClosedError):
        await connection.update_secret("x")


async def test_a_no_ack_consumer_gets_deliveries_without_settling_them(
    connection: Connection, bound: tuple[Channel, str, str]
) -> None:
    channel, exchange, queue = bound
    got: list[Message] = []
    reader = await connection.channel()
    await reader.basic_consume(queue, got.append, no_ack=True, exclusive=True)
    await asyncio.wait_for(channel.publish([(exchange, "k", Properties(message_id="n"), b"1")]).done, 10)
    for _ in range(100):
        if got:
            break
        await asyncio.sleep(0.05)
    await reader.close()
    assert [m.properties.message_id for m in got] == ["n"]
    assert (await channel.queue_declare(queue, durable=False, passive=True)).message_count == 0
