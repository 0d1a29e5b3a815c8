"""Cancel and revoke on the real RabbitMQ and Redis (a private vhost and key prefix per test):
a revoked delayed task never runs, a cancelled workflow's step is acked and dropped, plain events
cost no look-up, and a Redis outage hands the delivery back instead of losing or running it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import orjson
import pika
import pytest
import redis

from eventbus import BusSettings, EventBus, SyncEventBus
from eventbus._revocations import RedisRevocations, Revocations
from eventbus.workflows._forward import step_messages
from eventbus.workflows._reports import CANCELLED, REPORTS_EXCHANGE
from eventbus.workflows._slip import NAMESPACE, StepFrame, advance

from .._databases import REDIS_URL
from .._vhosts import amqp_url, private_vhost

pytestmark = [pytest.mark.broker, pytest.mark.redis]

SERVICE = "billing-svc"


@pytest.fixture
def vhost_url() -> Iterator[str]:
    with private_vhost("revoke") as vhost:
        yield amqp_url(vhost)


def _settings(url: str) -> BusSettings:
    return BusSettings(urls=(url,), service=SERVICE, handler_timeout=10, shutdown_grace=2)


class Counting:
    """A store that counts the look-ups it is asked for (and passes them on)."""

    def __init__(self, store: Revocations) -> None:
        self.store = store
        self.lookups: list[tuple[str, ...]] = []

    async def revoked(self, *ids: str) -> bool:
        self.lookups.append(ids)
        return await self.store.revoked(*ids)

    async def revoke(self, id: str, ttl: float | timedelta = timedelta(days=7)) -> None:
        await self.store.revoke(id, ttl)

    async def close(self) -> None:
        await self.store.close()


async def _until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def _depths(url: str, *queues: str) -> list[int]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        return [channel.queue_declare(q, passive=True).method.message_count for q in queues]
    finally:
        connection.close()


def _queues(task: Any) -> tuple[str, str]:
    queue = f"{SERVICE}.{task.type}"
    return queue, queue + ".dlq"


async def test_a_delayed_task_revoked_before_it_is_due_never_runs_and_plain_events_cost_no_lookup(
    vhost_url: str, redis_prefix: str
) -> None:
    store = Counting(RedisRevocations(REDIS_URL, prefix=redis_prefix))
    runs: list[str] = []
    async with EventBus(_settings(vhost_url), revocations=store) as bus:

        @bus.task
        async def charge(invoice: str) -> None:
            runs.append(invoice)

        await bus.start()
        revoked = await charge.apply_async(kwargs={"invoice": "revoked"}, countdown=2)
        kept = await charge.apply_async(kwargs={"invoice": "kept"}, countdown=2)
        await asyncio.sleep(0.5)
        await bus.revoke(revoked)
        await _until(lambda: runs == ["kept"] and bus.revoked_dropped == 1)
        assert sorted(store.lookups) == sorted([(revoked,), (kept,)])  # one EXISTS per delayed delivery
        for n in range(5):
            await charge.delay(invoice=f"plain-{n}")
        await _until(lambda: len(runs) == 6)
        assert sorted(runs[1:]) == [f"plain-{n}" for n in range(5)]
        assert len(store.lookups) == 2  # the plain events were not looked up
        assert await asyncio.to_thread(_depths, vhost_url, *_queues(charge)) == [0, 0]

    client = redis.Redis.from_url(REDIS_URL)
    try:
        value = client.get(redis_prefix + revoked)
        assert value is not None
        datetime.fromisoformat(value.decode().replace("Z", "+00:00"))  # RFC 3339
        assert 6 * 86400 < client.ttl(redis_prefix + revoked) <= 7 * 86400
        assert client.exists(redis_prefix + kept) == 0
    finally:
        client.close()


def _step(task: Any, workflow_id: str, step: str, **args: Any) -> Any:
    """A workflow step message of ``task``, made by hand with the slip codec (no canvas builder yet)."""
    contract = task.contract
    frame = StepFrame(step, contract.type, contract.exchange, contract.routing_key, args, "none")
    (message,), _ = step_messages(advance([frame], None), workflow_id=workflow_id,
                                  contracts={contract.type: contract}.get, source="/tests")
    return message


def _reports_tap(url: str) -> tuple[pika.BlockingConnection, str]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.exchange_declare(REPORTS_EXCHANGE, exchange_type="topic", durable=True)
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, REPORTS_EXCHANGE, routing_key="#")
    return connection, queue


async def test_a_cancelled_workflows_step_is_acked_and_dropped(vhost_url: str, redis_prefix: str) -> None:
    connection, tap = _reports_tap(vhost_url)
    runs: list[str] = []
    try:
        async with EventBus(_settings(vhost_url), revocations=RedisRevocations(REDIS_URL, prefix=redis_prefix)) as bus:

            @bus.task
            async def ship(parcel: str) -> None:
                runs.append(parcel)

            await bus.start()
            cancelled, running = str(uuid.uuid4()), str(uuid.uuid4())
            await bus.cancel(cancelled)
            outcomes = await bus._publish_outcomes([_step(ship, cancelled, "0", parcel="cancelled"),
                                                    _step(ship, running, "0", parcel="running")])
            assert outcomes == [None, None]
            await _until(lambda: runs == ["running"] and bus.revoked_dropped == 1)
            assert await asyncio.to_thread(_depths, vhost_url, *_queues(ship)) == [0, 0]  # acked, nothing parked

        channel = connection.channel()
        reports = []
        while (got := channel.basic_get(tap, auto_ack=True))[0] is not None:
            reports.append(got)
        ours = [(m, p, orjson.loads(b)) for m, p, b in reports if orjson.loads(b)["workflow_id"] == cancelled]
        assert len(ours) == 1  # the cancel, once; nothing else from the cancelled workflow (no step ran)
        method, properties, data = ours[0]
        assert method.routing_key == CANCELLED.type == properties.headers["cloudEvents_type"]
        assert CANCELLED.model.model_validate(data).workflow_id == cancelled
        assert properties.message_id == str(uuid.uuid5(NAMESPACE, f"{cancelled}/cancelled"))  # deterministic
    finally:
        connection.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def _redis_on(port: int) -> AsyncIterator[None]:
    """Redis comes back on ``port``: a plain TCP relay to the real one."""
    target = REDIS_URL.split("://", 1)[1].split("/", 1)[0]
    host, _, target_port = target.rpartition(":")

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(host or "127.0.0.1", int(target_port))
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    server = await asyncio.start_server(relay, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()


async def test_a_store_outage_hands_the_delayed_message_back_until_the_store_answers(
    vhost_url: str, redis_prefix: str
) -> None:
    port = _closed_port()
    store = Counting(RedisRevocations(f"redis://127.0.0.1:{port}/0", prefix=redis_prefix, timeout=1.0))
    runs: list[str] = []
    async with EventBus(_settings(vhost_url), revocations=store) as bus:

        @bus.task
        async def charge(invoice: str) -> None:
            runs.append(invoice)

        await bus.start()
        await charge.apply_async(kwargs={"invoice": "during-outage"}, countdown=0.2)
        await _until(lambda: len(store.lookups) >= 2)  # asked, refused, handed back, asked again
        assert runs == []
        async with _redis_on(port):
            await _until(lambda: runs == ["during-outage"])
            assert bus.revoked_dropped == 0
            assert await asyncio.to_thread(_depths, vhost_url, *_queues(charge)) == [0, 0]


def test_the_sync_bus_revokes_and_cancels(vhost_url: str, redis_prefix: str) -> None:
    runs: list[str] = []
    with SyncEventBus(_settings(vhost_url), revocations=RedisRevocations(REDIS_URL, prefix=redis_prefix)) as bus:

        @bus.task
        def remind(who: str) -> None:
            runs.append(who)

        bus.start()
        revoked = remind.apply_async(args=("revoked",), countdown=1)
        remind.apply_async(args=("kept",), countdown=1)
        bus.revoke(revoked)
        bus.cancel("wf-1")
        bus.run(until=lambda: runs == ["kept"] and bus.revoked_dropped == 1, timeout=20)
        assert runs == ["kept"] and bus.revoked_dropped == 1
    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert client.exists(redis_prefix + revoked, redis_prefix + "wf-1") == 2
    finally:
        client.close()
