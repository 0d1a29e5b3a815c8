"""``@bus.task`` on the real broker, each test in a private vhost: delay, retries, parking,
countdown/eta, a sync task on the sync bus."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pika
import pytest

from eventbus import (
    BusSettings,
    ConfigurationError,
    EventBus,
    EventValidationError,
    ExponentialBackoff,
    RetryPolicy,
    SyncEventBus,
)
from tests._queues import until

from .._vhosts import amqp_url, private_vhost

pytestmark = pytest.mark.broker

FAST = RetryPolicy(max_attempts=3, backoff=ExponentialBackoff(first=0.2, factor=1, maximum=1, jitter=0))


@pytest.fixture
def vhost_url() -> Iterator[str]:
    with private_vhost("tasks") as vhost:
        yield amqp_url(vhost)


def _settings(url: str) -> BusSettings:
    return BusSettings(urls=(url,), service="billing-svc", handler_timeout=10, shutdown_grace=2)


def _dlq(url: str, queue: str) -> list[tuple[pika.BasicProperties, bytes]]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        found = []
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return found
            found.append((properties, body))
    finally:
        connection.close()


async def test_a_task_is_delayed_retried_twice_then_succeeds(vhost_url: str) -> None:
    runs: list[tuple[str, int]] = []

    async with EventBus(_settings(vhost_url)) as bus:

        @bus.task(retry=FAST)
        async def charge(invoice_id: str, cents: int, note: str = "none") -> None:
            """Charge one invoice.

            Args:
                invoice_id: The invoice to charge.
                cents: How much, in cents.
            """
            runs.append((invoice_id, cents))
            if len(runs) < 3:
                raise ConnectionError("card network down")

        assert charge.type == "tasks.billing_svc.charge.v1"
        assert charge.model.__name__ == "Charge"
        assert bus.subscriptions[0].queue == "billing-svc.tasks.billing_svc.charge.v1"
        await bus.start()
        event_id = await charge.delay("inv_1", cents=1250)
        assert isinstance(event_id, str)
        await until(lambda: len(runs) == 3)
        await asyncio.sleep(0.5)
        assert runs == [("inv_1", 1250)] * 3  # two failures, then success: run three times, no more
        assert _dlq(vhost_url, "billing-svc.tasks.billing_svc.charge.v1.dlq") == []


async def test_a_task_failing_every_attempt_is_parked_with_its_error(vhost_url: str) -> None:
    runs: list[int] = []
    async with EventBus(_settings(vhost_url)) as bus:

        @bus.task(retry=FAST)
        def refund(invoice_id: str) -> None:  # a sync task runs in the handler threads
            runs.append(1)
            raise ValueError(f"no payment for {invoice_id}")

        await bus.start()
        await refund.delay(invoice_id="inv_9")
        queue = "billing-svc.tasks.billing_svc.refund.v1.dlq"
        await until(lambda: len(runs) == 3)
        parked: list[tuple[pika.BasicProperties, bytes]] = []
        deadline = time.monotonic() + 10
        while not parked and time.monotonic() < deadline:
            parked = await asyncio.to_thread(_dlq, vhost_url, queue)
            await asyncio.sleep(0.1)
        assert len(runs) == 3
        assert len(parked) == 1
        properties, body = parked[0]
        assert body == b'{"invoice_id":"inv_9"}'
        assert properties.headers["eventbus-error-type"] == "builtins.ValueError"
        assert "no payment for inv_9" in properties.headers["eventbus-error"]
        assert properties.headers["eventbus-attempt"] == 3


async def test_countdown_and_eta_hold_the_task_back(vhost_url: str) -> None:
    seen: dict[str, float] = {}
    async with EventBus(_settings(vhost_url)) as bus:

        @bus.task
        async def remind(who: str) -> None:
            seen[who] = time.monotonic()

        await bus.start()
        start = time.monotonic()
        await remind.apply_async(args=("countdown",), countdown=1.0)
        await remind.apply_async(kwargs={"who": "eta"}, eta=datetime.now(UTC) + timedelta(seconds=1.5))
        await remind.apply_async(args=("now",))
        await until(lambda: len(seen) == 3)
        assert seen["countdown"] - start >= 0.9
        assert seen["eta"] - start >= 1.4
        assert seen["now"] < seen["countdown"]


async def test_calling_a_task_runs_it_here_and_bad_arguments_never_leave(vhost_url: str) -> None:
    async with EventBus(_settings(vhost_url)) as bus:

        @bus.task
        def add(a: int, b: int = 1) -> int:
            return a + b

        assert add(2, b=3) == 5  # a plain local call
        with pytest.raises(EventValidationError):
            await add.delay("not a number")
        with pytest.raises(ConfigurationError):
            await add.delay(1, 2, 3)
        with pytest.raises(ConfigurationError):

            @bus.task
            def loose(*values: int) -> None: ...

        def other_add(a: int) -> int:
            return a

        with pytest.raises(ConfigurationError, match="two tasks"):
            bus.task(name="add")(other_add)


def test_a_sync_task_on_the_sync_bus(vhost_url: str) -> None:
    runs: list[str] = []
    with SyncEventBus(_settings(vhost_url)) as bus:

        @bus.task(retry=FAST)
        def greet(name: str) -> None:
            runs.append(name)
            if len(runs) == 1:
                raise RuntimeError("once")

        bus.start()
        assert isinstance(greet.delay("ada"), str)
        bus.run(until=lambda: len(runs) >= 2, timeout=20)
        assert runs == ["ada", "ada"]
        assert greet("local") is None and runs[-1] == "local"
