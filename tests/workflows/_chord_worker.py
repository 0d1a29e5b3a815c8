"""A worker process of the chord fault test: the member task, the callback task and the engine, on one bus.

``CHORD_URL=… CHORD_PREFIX=… eventbus worker tests.workflows._chord_worker:bus`` (from the repository
root): the worker command runs the tasks and the engine alike. What it
does is counted in Redis under the test's prefix, written *before* the handler returns (so before the
ack): a member run (``probe:runs``), a redelivered member (``probe:redelivered``), and each callback run
with its event id and whether it got all results in index order (``probe:callbacks``). The test
SIGKILLs these processes at random and starts new ones.
"""

from __future__ import annotations

import json
import os
from typing import Any

import redis.asyncio as aioredis

from eventbus import BusSettings, EventBus

from .._databases import REDIS_URL
from ._models import Count

SERVICE = "wf-chord"


def make_bus(url: str, prefix: str) -> tuple[EventBus, Any]:
    probe = aioredis.Redis.from_pool(aioredis.BlockingConnectionPool.from_url(REDIS_URL, max_connections=8))

    async def count(call_next: Any, event: Any, context: Any) -> Any:
        if context.type == part.type:
            await probe.incr(f"{prefix}probe:runs")
            if context.redelivered:
                await probe.incr(f"{prefix}probe:redelivered")
        elif context.type == collect.type:
            values = [p.n for p in event.parts]
            await probe.rpush(f"{prefix}probe:callbacks", json.dumps(
                {"id": context.id, "count": len(values), "in_order": values == list(range(len(values)))}))
        return await call_next(event, context)

    settings = BusSettings(urls=(url,), service=SERVICE, prefetch=200, handler_timeout=60, shutdown_grace=5)
    bus = EventBus(settings, middleware=[count])

    @bus.task
    async def part(i: int) -> Count:
        return Count(n=i)

    @bus.task
    async def collect(parts: list[Count]) -> None:
        return None

    from eventbus.workflow_engine import WorkflowEngine

    WorkflowEngine(bus, REDIS_URL, prefix=prefix, lease=3.0)
    return bus, (part, collect)


if "CHORD_URL" in os.environ:  # imported by ``eventbus worker``: the bus it runs
    bus, _ = make_bus(os.environ["CHORD_URL"], os.environ["CHORD_PREFIX"])
