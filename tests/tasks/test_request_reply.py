"""Request-reply on the real broker (direct reply-to), each test in a private vhost: a typed
result, a remote error with its type and message, a timeout that leaves no queue, concurrent
requests matched by correlation id, the sync twin."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from eventbus import (
    BusSettings,
    EventBus,
    ExponentialBackoff,
    RemoteTaskError,
    RequestTimeoutError,
    RetryPolicy,
    SyncEventBus,
)
from eventbus_contracts import REGISTRY, FriendshipStatusChangedV1

from .._vhosts import amqp_url, private_vhost, vhost_queues

pytestmark = pytest.mark.broker

STATUS = REGISTRY.get("context.friendship.status_changed.v1")
FAST = RetryPolicy(max_attempts=2, backoff=ExponentialBackoff(first=0.1, factor=1, maximum=1, jitter=0))


@pytest.fixture
def vhost() -> Iterator[str]:
    with private_vhost("rpc") as name:
        yield name


def _settings(vhost: str, service: str) -> BusSettings:
    return BusSettings(urls=(amqp_url(vhost),), service=service, handler_timeout=10, shutdown_grace=2)


def _status(score: float) -> FriendshipStatusChangedV1:
    return STATUS.validate_python({**STATUS.schema["examples"][0], "score": score})


def _responder(vhost: str, transport: str = "lean") -> EventBus:
    bus = EventBus(_settings(vhost, "scorer"), transport=transport)

    @bus.task(retry=FAST)
    async def score(user_a: str, user_b: str, points: float) -> FriendshipStatusChangedV1:
        if points < 0:
            raise ValueError(f"negative points for {user_a}")
        if points > 1000:
            await asyncio.sleep(5)
        return _status(min(points, 100.0))

    bus.score = score  # type: ignore[attr-defined]
    return bus


async def test_a_request_gets_the_typed_result(vhost: str) -> None:
    async with _responder(vhost) as responder, EventBus(_settings(vhost, "caller")) as caller:
        await responder.start()
        score = responder.score  # type: ignore[attr-defined]
        result = await caller.request(score.message("u_1", "u_2", points=42.5), reply=FriendshipStatusChangedV1,
                                      timeout=10)
        assert isinstance(result, FriendshipStatusChangedV1)
        assert result.score == 42.5 and result.user_a == "u_1842"


@pytest.mark.parametrize("transport", ["lean", "aio-pika"])
async def test_a_remote_error_is_raised_with_its_type_and_message_after_the_last_attempt(vhost: str,
                                                                                           transport: str) -> None:
    """The retry copy keeps reply_to, so the last attempt answers, whichever transport the responder uses."""
    async with _responder(vhost, transport) as responder, EventBus(_settings(vhost, "caller")) as caller:
        await responder.start()
        score = responder.score  # type: ignore[attr-defined]
        with pytest.raises(RemoteTaskError) as raised:
            await caller.request(score.message("u_7", "u_2", points=-1), reply=FriendshipStatusChangedV1, timeout=10)
        assert raised.value.remote_type == "builtins.ValueError"
        assert raised.value.remote_message == "negative points for u_7"
        assert raised.value.event_type == "tasks.scorer.score.v1"


async def test_concurrent_requests_get_their_own_replies(vhost: str) -> None:
    async with _responder(vhost) as responder, EventBus(_settings(vhost, "caller")) as caller:
        await responder.start()
        score = responder.score  # type: ignore[attr-defined]
        points = [float(p) for p in range(1, 51)]
        results = await asyncio.gather(*(
            caller.request(score.message("u_1", "u_2", points=p), reply=FriendshipStatusChangedV1, timeout=15)
            for p in points
        ))
        assert [r.score for r in results] == points


async def test_a_timeout_raises_and_leaves_no_queue_behind(vhost: str) -> None:
    async with _responder(vhost) as responder, EventBus(_settings(vhost, "caller")) as caller:
        await responder.start()
        before = await asyncio.to_thread(vhost_queues, vhost)
        score = responder.score  # type: ignore[attr-defined]
        with pytest.raises(RequestTimeoutError):
            await caller.request(score.message("u_1", "u_2", points=5000), reply=FriendshipStatusChangedV1,
                                 timeout=0.5)
        # the caller still works, and a late reply does not reach the next request
        result = await caller.request(score.message("u_1", "u_2", points=3), reply=FriendshipStatusChangedV1,
                                      timeout=15)
        assert result.score == 3.0
        after = await asyncio.to_thread(vhost_queues, vhost)
        assert after == before
        assert not [q for q in after if "reply" in q or q.startswith("amq.")]


def test_the_sync_bus_requests_too(vhost: str) -> None:
    responder = SyncEventBus(_settings(vhost, "scorer"))

    @responder.task(retry=RetryPolicy.never())
    def double(value: int) -> FriendshipStatusChangedV1:
        if value == 0:
            raise ZeroDivisionError("zero")
        if value < 0:
            time.sleep(2)
        return _status(float(value * 2))

    with responder, SyncEventBus(_settings(vhost, "caller")) as caller:
        responder.start()
        assert caller.request(double.message(21), reply=FriendshipStatusChangedV1, timeout=10).score == 42.0
        with pytest.raises(RemoteTaskError) as raised:
            caller.request(double.message(value=0), reply=None, timeout=10)
        assert raised.value.remote_type == "builtins.ZeroDivisionError"
        with pytest.raises(RequestTimeoutError):
            caller.request(double.message(-1), reply=None, timeout=0.3)


def _raw_request(vhost: str, routing_key: str, body: bytes, headers: dict[str, str]) -> tuple[object, bytes]:
    """A request from an independent client (pika), as a Node or Go runtime would make it: consume
    direct reply-to no-ack, publish with reply_to and correlation_id, wait for the reply."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url(vhost)))
    try:
        channel = connection.channel()
        replies: list[tuple[object, bytes]] = []
        channel.basic_consume("amq.rabbitmq.reply-to", lambda _c, _m, p, b: replies.append((p, b)), auto_ack=True)
        channel.basic_publish("tasks", routing_key, body, pika.BasicProperties(
            reply_to="amq.rabbitmq.reply-to", correlation_id="corr-1", content_type="application/json",
            message_id="req-1", type=routing_key, headers=headers))
        deadline = time.monotonic() + 15
        while not replies and time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.1)
        assert replies, "no reply"
        return replies[0]
    finally:
        connection.close()


async def test_a_request_that_breaks_its_contract_is_answered_with_the_error_as_on_the_wire(vhost: str) -> None:
    async with _responder(vhost) as responder:
        await responder.start()
        headers = {"cloudEvents_specversion": "1.0", "cloudEvents_id": "req-1", "cloudEvents_source": "/raw",
                   "cloudEvents_type": "tasks.scorer.score.v1"}
        ok_properties, ok_body = await asyncio.to_thread(
            _raw_request, vhost, "tasks.scorer.score.v1", b'{"user_a":"a","user_b":"b","points":2}', headers)
        assert ok_properties.correlation_id == "corr-1"  # type: ignore[attr-defined]
        assert ok_properties.headers["eventbus-reply-status"] == "ok"  # type: ignore[attr-defined]
        assert ok_properties.headers["cloudEvents_type"] == "context.friendship.status_changed.v1"  # type: ignore[attr-defined]
        assert b'"score":2.0' in ok_body
        bad_properties, bad_body = await asyncio.to_thread(
            _raw_request, vhost, "tasks.scorer.score.v1", b'{"user_a":"a"}', headers)
        reply_headers = bad_properties.headers  # type: ignore[attr-defined]
        assert reply_headers["eventbus-reply-status"] == "error"
        assert reply_headers["eventbus-error-type"] == "EventValidationError"
        assert "points" in reply_headers["eventbus-error"]
        assert bad_body == b""
