"""Retries, time limits and delayed publishing on the real broker, in both APIs.

Delays here are short (a few hundred ms) and exact (no jitter), so the tests can check the
lower bound: a retry never comes back before its delay. Upper bounds are not asserted (a busy
CI box may be slow); tests/faults/test_delays.py measures accuracy.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from eventbus import (
    BusSettings,
    EventBus,
    EventContext,
    ExponentialBackoff,
    RetryLater,
    RetryPolicy,
    SyncEventBus,
)
from eventbus_contracts import REGISTRY, ConversationEndedV1
from tests._queues import until

from ..conftest import RawBroker, wait_until

pytestmark = pytest.mark.broker

CONTRACT = REGISTRY.get("chat.conversation.ended.v1")
EXAMPLE = CONTRACT.schema["examples"][0]
EXACT = ExponentialBackoff(first=0.3, factor=2, maximum=5, jitter=0)


def _event(conversation_id: str) -> ConversationEndedV1:
    return CONTRACT.validate_python({**EXAMPLE, "conversation_id": conversation_id})


@dataclass
class Calls:
    """Every handler call: (conversation id, attempt, monotonic time, context)."""

    seen: list[tuple[str, int, float, EventContext]] = field(default_factory=list)

    def record(self, event: ConversationEndedV1, ctx: EventContext) -> None:
        self.seen.append((event.conversation_id, ctx.attempt, time.monotonic(), ctx))

    def of(self, conversation_id: str) -> list[tuple[str, int, float, EventContext]]:
        return [call for call in self.seen if call[0] == conversation_id]


def _check_transient(calls: Calls) -> None:
    attempts = calls.of("conv_transient")
    assert [a for _, a, _, _ in attempts] == [1, 2, 3]
    gaps = [later[2] - earlier[2] for earlier, later in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.3 - 0.01 and gaps[1] >= 0.6 - 0.01  # never before the backoff delay
    second, third = attempts[1][3], attempts[2][3]
    assert second.headers["eventbus-retry-delay-ms"] == 300 and third.headers["eventbus-retry-delay-ms"] == 600
    assert third.headers["eventbus-error"] == "RuntimeError: transient failure 2"
    assert (third.exchange, third.routing_key) == ("chat", CONTRACT.type)  # the origin, not the delay queues
    assert third.id == attempts[0][3].id


class Parked:
    """Collects the DLQ copies of one event (other publishers' broken events may be parked there too)."""

    def __init__(self, raw: RawBroker, queue: str) -> None:
        self.raw, self.dlq = raw, queue + ".dlq"
        self.found: list[Any] = []

    def of(self, event_id: str) -> list[Any]:
        self.found += self.raw.get(self.dlq, self.raw.depth(self.dlq), timeout=0.1)
        return [m for m in self.found if m.headers.get("cloudEvents_id") == event_id]


def _check_parked(raw: RawBroker, queue: str, calls: Calls) -> None:
    attempts = calls.of("conv_always")
    assert [a for _, a, _, _ in attempts] == [1, 2, 3]
    parked = Parked(raw, queue)
    assert wait_until(lambda: bool(parked.of(attempts[0][3].id)))
    parked = parked.of(attempts[0][3].id)
    assert len(parked) == 1
    headers = parked[0].headers
    assert headers["eventbus-park-reason"] == "handler_error"
    assert headers["eventbus-attempt"] == 3
    assert headers["eventbus-error"] == "ValueError: always broken (attempt 3)"
    assert headers["eventbus-error-type"] == "builtins.ValueError"
    assert "raise ValueError" in headers["eventbus-traceback"]
    first = datetime.fromisoformat(headers["eventbus-first-failure-at"])
    last = datetime.fromisoformat(headers["eventbus-last-failure-at"])
    assert timedelta(seconds=0.9 - 0.02) <= last - first  # 0.3 s + 0.6 s of backoff in between
    assert headers["eventbus-original-queue"] == queue
    assert headers["eventbus-original-exchange"] == "chat"
    assert "x-death" not in headers
    assert parked[0].body == CONTRACT.encode(_event("conv_always"))


def _fail_as_planned(event: ConversationEndedV1, ctx: EventContext) -> None:
    if event.conversation_id == "conv_transient" and ctx.attempt < 3:
        raise RuntimeError(f"transient failure {ctx.attempt}")
    if event.conversation_id == "conv_always":
        raise ValueError(f"always broken (attempt {ctx.attempt})")
    if event.conversation_id == "conv_later" and ctx.attempt == 1:
        raise RetryLater(0.5)


async def test_async_retries_back_off_then_succeed_or_park(settings: BusSettings, raw: RawBroker) -> None:
    calls = Calls()
    bus = EventBus(settings)

    @bus.subscribe(ConversationEndedV1, retry=RetryPolicy(max_attempts=3, backoff=EXACT))
    async def handler(event: ConversationEndedV1, ctx: EventContext) -> None:
        calls.record(event, ctx)
        _fail_as_planned(event, ctx)

    await bus.start()
    try:
        for name in ("conv_transient", "conv_always", "conv_later"):
            await bus.publish(_event(name))
        queue = f"{settings.service}.{CONTRACT.type}"
        await until(lambda: len(calls.of("conv_transient")) == 3 and len(calls.of("conv_always")) == 3
                     and len(calls.of("conv_later")) == 2 and raw.depth(queue + ".dlq") >= 1)
    finally:
        await bus.close()
    _check_transient(calls)
    _check_parked(raw, queue, calls)
    later = calls.of("conv_later")
    assert later[1][2] - later[0][2] >= 0.5 - 0.01
    assert later[1][3].headers["eventbus-retry-delay-ms"] == 500


def test_sync_retries_back_off_then_succeed_or_park(settings: BusSettings, raw: RawBroker) -> None:
    calls = Calls()
    queue = f"{settings.service}.{CONTRACT.type}"
    with SyncEventBus(settings) as bus:

        @bus.subscribe(ConversationEndedV1, retry=RetryPolicy(max_attempts=3, backoff=EXACT))
        def handler(event: ConversationEndedV1, ctx: EventContext) -> None:
            calls.record(event, ctx)
            _fail_as_planned(event, ctx)

        bus.start()
        for name in ("conv_transient", "conv_always"):
            bus.publish(_event(name))
        bus.run(until=lambda: len(calls.of("conv_transient")) == 3 and len(calls.of("conv_always")) == 3
                and raw.depth(queue + ".dlq") >= 1, timeout=20)
    _check_transient(calls)
    _check_parked(raw, queue, calls)


async def test_a_retry_reaches_only_the_queue_that_failed(settings: BusSettings, raw: RawBroker) -> None:
    other = settings.with_(service=settings.service + "-other")
    raw.track(f"{other.service}.{CONTRACT.type}", f"{other.service}.{CONTRACT.type}.dlq")
    failing, healthy = EventBus(settings), EventBus(other)
    failing_calls, healthy_calls = Calls(), Calls()

    @failing.subscribe(ConversationEndedV1, retry=RetryPolicy(max_attempts=2, backoff=EXACT))
    async def flaky(event: ConversationEndedV1, ctx: EventContext) -> None:
        failing_calls.record(event, ctx)
        if event.conversation_id == "conv_shared" and ctx.attempt == 1:
            raise RuntimeError("once")

    healthy.subscribe(ConversationEndedV1)(healthy_calls.record)
    await failing.start()
    await healthy.start()
    try:
        await failing.publish(_event("conv_shared"))
        await until(lambda: len(failing_calls.of("conv_shared")) == 2)
        # Anything routed to the healthy queue along with the retry would arrive before this marker.
        await failing.publish(_event("conv_marker"))
        await until(lambda: len(healthy_calls.of("conv_marker")) == 1)
    finally:
        await failing.close()
        await healthy.close()
    assert len(healthy_calls.of("conv_shared")) == 1


async def test_a_handler_past_its_time_limit_is_cancelled_and_parked(settings: BusSettings, raw: RawBroker) -> None:
    bus = EventBus(settings)
    finished: list[str] = []

    @bus.subscribe(ConversationEndedV1, timeout=0.3, retry=RetryPolicy.never())
    async def slow(event: ConversationEndedV1) -> None:
        await asyncio.sleep(30)
        finished.append(event.conversation_id)

    await bus.start()
    queue = f"{settings.service}.{CONTRACT.type}"
    parked = Parked(raw, queue)
    try:
        event_id = await bus.publish(_event("conv_slow"))
        await until(lambda: bool(parked.of(event_id)))
    finally:
        await bus.close()
    assert len(parked.of(event_id)) == 1 and "conv_slow" not in finished
    parked = parked.of(event_id)
    assert parked[0].headers["eventbus-park-reason"] == "handler_timeout"
    assert parked[0].headers["eventbus-error-type"] == "eventbus._exceptions.HandlerTimeoutError"


def test_a_sync_handler_past_its_time_limit_is_settled_as_failed(settings: BusSettings, raw: RawBroker) -> None:
    queue = f"{settings.service}.{CONTRACT.type}"
    dead = Parked(raw, queue)
    with SyncEventBus(settings.with_(shutdown_grace=0.1)) as bus:
        bus.subscribe(ConversationEndedV1, timeout=0.3, retry=RetryPolicy.never())(lambda event: time.sleep(3))
        bus.start()
        event_id = bus.publish(_event("conv_slow_sync"))
        bus.run(until=lambda: bool(dead.of(event_id)), timeout=15)
    parked = dead.of(event_id)
    assert len(parked) == 1 and parked[0].headers["eventbus-park-reason"] == "handler_timeout"


async def test_delayed_publish_reaches_every_subscriber_after_the_delay(settings: BusSettings, raw: RawBroker) -> None:
    other = settings.with_(service=settings.service + "-other")
    raw.track(f"{other.service}.{CONTRACT.type}", f"{other.service}.{CONTRACT.type}.dlq")
    first, second = EventBus(settings), EventBus(other)
    calls = Calls()
    first.subscribe(ConversationEndedV1)(calls.record)
    second.subscribe(ConversationEndedV1)(calls.record)
    await first.start()
    await second.start()
    try:
        sent = time.monotonic()
        await first.publish(_event("conv_delayed"), delay=0.8)
        await first.publish(_event("conv_at"), at=datetime.now(UTC) + timedelta(seconds=0.5))
        await until(lambda: len(calls.of("conv_delayed")) == 2 and len(calls.of("conv_at")) == 2)
    finally:
        await first.close()
        await second.close()
    for _, attempt, arrived, ctx in calls.of("conv_delayed"):
        assert arrived - sent >= 0.8 - 0.06 and attempt == 1
        assert (ctx.exchange, ctx.routing_key) == ("chat", CONTRACT.type)
        assert "eventbus-deliver-at" in ctx.headers
    assert {ctx.queue for *_, ctx in calls.of("conv_delayed")} == {
        f"{settings.service}.{CONTRACT.type}", f"{other.service}.{CONTRACT.type}"}
    assert all(arrived - sent >= 0.5 - 0.06 for _, _, arrived, _ in calls.of("conv_at"))


def test_sync_delayed_publish(settings: BusSettings, raw: RawBroker) -> None:
    calls = Calls()
    with SyncEventBus(settings) as bus:
        bus.subscribe(ConversationEndedV1)(calls.record)
        bus.start()
        sent = time.monotonic()
        bus.publish(_event("conv_sync_delayed"), delay=timedelta(milliseconds=700))
        bus.run(until=lambda: bool(calls.of("conv_sync_delayed")), timeout=15)
    assert len(calls.of("conv_sync_delayed")) == 1
    assert calls.of("conv_sync_delayed")[0][2] - sent >= 0.7 - 0.06


async def test_middleware_wraps_every_handler_call_in_order(settings: BusSettings, raw: RawBroker) -> None:
    trail: list[str] = []

    def layer(name: str) -> Any:
        async def wrap(call_next: Any, event: ConversationEndedV1, ctx: EventContext) -> Any:
            trail.append(f"{name}>{ctx.attempt}")
            try:
                return await call_next(event, ctx)
            finally:
                trail.append(f"<{name}")

        return wrap

    bus = EventBus(settings, middleware=[layer("bus")])
    done: list[str] = []

    @bus.subscribe(ConversationEndedV1, middleware=[layer("handler")])
    async def handler(event: ConversationEndedV1) -> None:  # no context: the layers still get one
        if event.conversation_id == "conv_layers":
            trail.append("handler")
            done.append(event.conversation_id)

    await bus.start()
    try:
        await bus.publish(_event("conv_layers"))
        await until(lambda: bool(done))
    finally:
        await bus.close()
    start = trail.index("handler")
    assert trail[start - 2 : start + 3] == ["bus>1", "handler>1", "handler", "<handler", "<bus"]

