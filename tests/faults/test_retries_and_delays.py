"""Retries under load, a poison message among good ones, and delays with no head-of-line blocking."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict
from typing import Any

import pika

from eventbus import EventBus, EventContext, ExponentialBackoff, RetryPolicy
from eventbus._delay import DELAY_LEVELS, level_name

from ._broker import FaultBroker
from ._events import CONTRACT, drain, event, until
from .conftest import Tally, fast_settings


async def test_transient_failures_succeed_on_attempt_3_and_permanent_ones_park_with_history(
    fault_broker: FaultBroker, service: str, tally: Tally
) -> None:
    backoff = ExponentialBackoff(first=0.5, factor=2, maximum=10, jitter=0.5)
    bus = EventBus(fast_settings(service, fault_broker.url), middleware=[])
    calls: dict[str, list[tuple[int, float, int | None]]] = defaultdict(list)

    @bus.subscribe(CONTRACT.model, retry=RetryPolicy(max_attempts=3, backoff=backoff))
    async def handler(event: Any, ctx: EventContext) -> None:
        calls[ctx.id].append((ctx.attempt, time.monotonic(), ctx.headers.get("eventbus-retry-delay-ms")))
        if event.conversation_id.startswith("conv_broken") or ctx.attempt < 3:
            raise RuntimeError(f"{event.conversation_id} failed on attempt {ctx.attempt}")

    await bus.start()
    try:
        transient = [await bus.publish(event(f"conv_flaky_{n}")) for n in range(200)]
        broken = [await bus.publish(event(f"conv_broken_{n}")) for n in range(20)]
        dlq = f"{service}.{CONTRACT.type}.dlq"
        await until(lambda: all(len(calls[i]) == 3 for i in transient + broken), what="three attempts each")
        parked = await asyncio.to_thread(drain, fault_broker.url, dlq)
        while len(parked) < len(broken):  # the last parks may still be on their way
            await asyncio.sleep(0.1)
            parked += await asyncio.to_thread(drain, fault_broker.url, dlq)
    finally:
        await bus.close()
    early = 0
    for event_id in transient + broken:
        attempts = calls[event_id]
        assert [a for a, _, _ in attempts] == [1, 2, 3]
        for (_, before, _), (_, after, delay_ms) in itertools.pairwise(attempts):
            assert delay_ms is not None
            early += after - before < delay_ms / 1000 - 0.01
    assert early == 0  # no retry came back before its backoff delay
    delays = [calls[i][1][2] for i in transient]
    assert all(250 <= d <= 500 for d in delays)  # attempt 2 after 0.5 s with up to 50 % jitter
    assert len({*delays}) > 1  # jitter spreads them
    assert sorted(p.message_id for p in parked) == sorted(broken)
    for properties in parked:
        headers = properties.headers
        assert headers["eventbus-attempt"] == 3 and headers["eventbus-park-reason"] == "handler_error"
        assert headers["eventbus-error"].endswith("failed on attempt 3")
        assert headers["eventbus-first-failure-at"] < headers["eventbus-last-failure-at"]
        assert "RuntimeError" in headers["eventbus-traceback"]
    tally.published = len(transient) + len(broken)
    tally.handled, tally.parked = len(transient), len(parked)
    tally.lost = tally.published - tally.handled - tally.parked
    tally.notes.update(attempts_each=3, retried_early=early)


async def test_a_poison_message_does_not_block_the_queue(fault_broker: FaultBroker, service: str,
                                                         tally: Tally) -> None:
    bus = EventBus(fast_settings(service, fault_broker.url, prefetch=10))
    handled: list[str] = []
    poison_attempts: list[int] = []

    quick = RetryPolicy(max_attempts=4, backoff=ExponentialBackoff(first=0.5, factor=2, jitter=0))

    @bus.subscribe(CONTRACT.model, retry=quick)
    async def handler(event: Any, ctx: EventContext) -> None:
        if event.conversation_id == "conv_poison":
            poison_attempts.append(ctx.attempt)
            raise ValueError("this body crashes the handler every time")
        handled.append(ctx.id)

    await bus.start()
    try:
        poison = await bus.publish(event("conv_poison"))
        good = await bus.publish_many([event(f"conv_good_{n}") for n in range(1000)])
        await until(lambda: set(good) <= set(handled), what="the good events behind the poison")
        good_done_while_poison_on_attempt = len(poison_attempts)
        dlq = f"{service}.{CONTRACT.type}.dlq"
        await until(lambda: len(poison_attempts) == 4, what="the poison's last attempt")
        parked = []
        while not parked:
            parked = await asyncio.to_thread(drain, fault_broker.url, dlq)
            await asyncio.sleep(0.05)
    finally:
        await bus.close()
    assert good_done_while_poison_on_attempt < 4
    assert [p.message_id for p in parked] == [poison]
    tally.published, tally.handled, tally.parked = len(good) + 1, len(set(handled)), len(parked)
    tally.lost = len(set(good) - set(handled))
    tally.notes.update(poison_attempt_when_good_ones_were_done=good_done_while_poison_on_attempt)


def _level_depths(url: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        return sum(channel.queue_declare(level_name(k), passive=True).method.message_count
                   for k in range(DELAY_LEVELS))
    finally:
        connection.close()


async def test_delays_have_no_head_of_line_blocking_and_are_never_early(
    fault_broker: FaultBroker, service: str, tally: Tally
) -> None:
    bus = EventBus(fast_settings(service, fault_broker.url))
    arrived: dict[str, float] = {}
    bus.subscribe(CONTRACT.model)(lambda event, ctx: arrived.setdefault(event.conversation_id, time.monotonic()))
    await bus.start()
    wanted = {"conv_in_1h": 3600.0, "conv_in_7d": 7 * 86400.0, "conv_in_2.5s": 2.5, "conv_in_1s": 1.0,
              "conv_in_4s": 4.0, "conv_in_1.3s": 1.3}
    sent: dict[str, float] = {}
    try:
        for name, delay in wanted.items():  # the long ones first: they must not hold the short ones back
            sent[name] = time.monotonic()
            await bus.publish(event(name), delay=delay)
        short = [n for n, d in wanted.items() if d < 60]
        await until(lambda: all(n in arrived for n in short), timeout=30, what="the short delays")
        waiting = await asyncio.to_thread(_level_depths, fault_broker.url)
    finally:
        await bus.close()
    errors_ms = {name: round((arrived[name] - sent[name] - wanted[name]) * 1000) for name in short}
    assert all(error > -60 for error in errors_ms.values()), errors_ms  # never early beyond the 50 ms rounding
    assert "conv_in_1h" not in arrived and "conv_in_7d" not in arrived
    assert waiting >= 2  # the long ones still wait in eventbus.delay.*
    tally.published, tally.handled = len(wanted), len(short)
    tally.notes.update(arrival_error_ms=errors_ms, still_delayed=waiting)
