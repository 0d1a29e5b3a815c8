"""The workflow engine on the real RabbitMQ (a private vhost) and Redis (a private key prefix), driven
by reports published by hand: a join counts every member once whatever the duplicates and order, fires
exactly once with the results in index order, never fires for a cancelled workflow, and every key it
writes expires. Tracking follows the reports (also a step report before ``started``)."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pika
import pytest
import redis

from eventbus import BusSettings, EventBus
from eventbus.workflow_engine import RedisStore, WorkflowEngine, Workflows
from eventbus.workflows._reports import (
    ENGINE_QUEUE,
    JoinReport,
    StepCompleted,
    WorkflowCancelled,
    WorkflowFailed,
    WorkflowStarted,
)
from eventbus.workflows._slip import report_id, step_event_id
from tests._queues import queue_depth as _depth
from tests._queues import until

from .._databases import REDIS_URL
from .._vhosts import amqp_url, private_vhost

pytestmark = [pytest.mark.broker, pytest.mark.redis]

TTL = 3600


@pytest.fixture
def vhost_url() -> Iterator[str]:
    with private_vhost("wf-engine") as vhost:
        yield amqp_url(vhost)


def _settings(url: str) -> BusSettings:
    return BusSettings(urls=(url,), service="wf-engine-test", handler_timeout=30, shutdown_grace=5)


class Handled:
    """Bus middleware counting the reports the engine handled (acked), to know when all are through."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self, call_next: Any, event: Any, context: Any) -> Any:
        result = await call_next(event, context)
        if context.queue == ENGINE_QUEUE:
            self.count += 1
        return result


async def _until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    await until(predicate, timeout, 0.05)


def _probe(url: str, exchange: str, key: str) -> tuple[pika.BlockingConnection, str]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.exchange_declare(exchange, exchange_type="topic", durable=True)
    queue = channel.queue_declare("probe", durable=True).method.queue
    channel.queue_bind(queue, exchange, routing_key=key)
    return connection, queue


def _drain(connection: pika.BlockingConnection, queue: str) -> list[tuple[pika.BasicProperties, bytes]]:
    channel = connection.channel()
    found = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return found
        found.append((properties, body))




def _member(workflow_id: str, index: int, size: int, result: Any, callback: dict[str, Any]) -> StepCompleted:
    now = datetime.now(UTC)
    join = JoinReport(group="g", index=index, size=size, result=result, next=[callback])
    return StepCompleted(workflow_id=workflow_id, step=f"0.{index}", type="tasks.wf_engine_test.part.v1", attempt=1,
                         started_at=now, finished_at=now, result_type=None, join=join)


async def _publish(bus: EventBus, reports: list[Any]) -> None:
    for report in reports:
        step = getattr(report, "step", "started")
        await bus.publish(report, event_id=report_id(report.workflow_id, step, "completed"))


def _callback(task_type: str) -> dict[str, Any]:
    return {"step": "1", "type": task_type, "exchange": "tasks", "routing_key": task_type, "args": {"label": "sum"},
            "input": "field", "field": "results"}


def _ttls(prefix: str) -> dict[str, int]:
    client = redis.Redis.from_url(REDIS_URL)
    return {k.decode(): client.ttl(k) for k in client.scan_iter(match=f"{prefix}*", count=1000)}


async def test_a_join_fires_once_with_results_in_index_order_whatever_the_duplicates(
        vhost_url: str, redis_prefix: str) -> None:
    size = 40
    workflow_id = str(uuid.uuid4())
    runs: list[tuple[str, list[int]]] = []
    handled = Handled()
    async with EventBus(_settings(vhost_url), middleware=[handled]) as bus:

        @bus.task
        async def total(label: str, results: list[int]) -> None:
            runs.append((label, results))

        engine = WorkflowEngine(bus, REDIS_URL, prefix=redis_prefix, ttl=TTL)
        connection, probe = _probe(vhost_url, "tasks", total.type)
        await bus.start()
        callback = _callback(total.type)
        plan = {"chord": [{"step": f"0.{i}"} for i in range(size)], "callback": {"step": "1"}}
        members = [_member(workflow_id, i, size, i * 10, callback) for i in range(size)]
        # every member twice (a redelivery), one retried with another result (the first counted wins),
        # shuffled, and the started report in the middle (reports may come before it)
        retried = _member(workflow_id, 7, size, -1, callback)
        reports: list[Any] = [*members, *members, retried]
        random.Random(16).shuffle(reports)
        reports.insert(size // 2, WorkflowStarted(workflow_id=workflow_id, plan=plan, started_at=datetime.now(UTC)))
        await _publish(bus, reports)
        await _until(lambda: len(runs) == 1)
        # and once more after it fired
        await _publish(bus, members[:5])
        await _until(lambda: handled.count == len(reports) + 5 + 1)  # + the callback step's own report
        await bus.stop()
        assert _depth(vhost_url, ENGINE_QUEUE) == 0  # every report was handled, none is left to fire late
        callbacks = _drain(connection, probe)
        connection.close()

    assert runs == [("sum", [i * 10 for i in range(size)])]
    assert [p.message_id for p, _ in callbacks] == [step_event_id(workflow_id, "1")]
    assert engine.fired == 1
    async with Workflows(REDIS_URL, prefix=redis_prefix) as workflows:
        view = await workflows.show(workflow_id)
    assert view is not None
    assert view.joins["g"].counted == size and view.joins["g"].callbacks == ["1"]
    # the callback ran as a step (the consumer's step runtime) and reported: every step of the plan is done
    assert view.state == "completed"
    assert {view.steps[f"0.{i}"].state for i in range(size)} == {"completed"}
    assert view.steps["1"].state == "completed" and view.steps["1"].type == total.type
    ttls = _ttls(redis_prefix)
    assert ttls and all(0 < ttl <= TTL for ttl in ttls.values()), ttls


async def test_a_cancelled_workflow_never_fires_its_join(vhost_url: str, redis_prefix: str) -> None:
    size = 10
    workflow_id = str(uuid.uuid4())
    runs: list[Any] = []
    redis.Redis.from_url(REDIS_URL).set(f"{redis_prefix}revoked:{workflow_id}", "2026-12-07T00:00:00Z", ex=TTL)
    handled = Handled()
    async with EventBus(_settings(vhost_url), middleware=[handled]) as bus:

        @bus.task
        async def total(label: str, results: list[int]) -> None:
            runs.append(results)

        WorkflowEngine(bus, REDIS_URL, prefix=redis_prefix, ttl=TTL)
        connection, probe = _probe(vhost_url, "tasks", total.type)
        await bus.start()
        members = [_member(workflow_id, i, size, i, _callback(total.type)) for i in range(size)]
        await bus.publish(WorkflowCancelled(workflow_id=workflow_id, cancelled_at=datetime.now(UTC)))
        await _publish(bus, members)
        await _until(lambda: handled.count == size + 1)
        await bus.stop()
        assert _depth(vhost_url, ENGINE_QUEUE) == 0
        callbacks = _drain(connection, probe)
        connection.close()
    assert runs == [] and callbacks == []
    async with Workflows(REDIS_URL, prefix=redis_prefix) as workflows:
        view = await workflows.show(workflow_id)
        assert view is not None and view.state == "cancelled" and view.joins == {}
        assert [w.id for w in await workflows.list()] == [workflow_id]
        assert await workflows.list(failed=True) == []


async def test_tracking_follows_the_reports_to_failed_and_completed(vhost_url: str, redis_prefix: str) -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    now = datetime.now(UTC)
    plan = [{"step": "0", "type": "t.a.v1"}, {"group": "1", "members": [[{"step": "1.0"}], [{"step": "1.1"}]]}]

    def done(workflow_id: str, step: str) -> StepCompleted:
        return StepCompleted(workflow_id=workflow_id, step=step, type="t.a.v1", attempt=2, started_at=now,
                             finished_at=now, result_type="t.r.v1")

    handled = Handled()
    async with EventBus(_settings(vhost_url), middleware=[handled]) as bus:
        WorkflowEngine(bus, REDIS_URL, prefix=redis_prefix, ttl=TTL)
        await bus.start()
        # a: every step completes, the last report before started
        await _publish(bus, [done(a, "0"), done(a, "1.0"), done(a, "1.1")])
        await bus.publish(WorkflowStarted(workflow_id=a, plan={"next": plan}, started_at=now))
        # b: one step completes, one fails, one on_error step runs (not part of the plan)
        await bus.publish(WorkflowStarted(workflow_id=b, plan={"next": plan}, started_at=now))
        await _publish(bus, [done(b, "0"), done(b, "1.0"), done(b, "err")])
        await bus.publish(WorkflowFailed(workflow_id=b, step="1.1", type="t.a.v1", message_id="m-1", attempt=3,
                                         reason="handler_error", error_type="builtins.ValueError", error="boom",
                                         queue="svc.t.a.v1.dlq", failed_at=now))
        await _until(lambda: handled.count == 9)
        await bus.stop()

    async with Workflows(REDIS_URL, prefix=redis_prefix) as workflows:
        listed = {w.id: w for w in await workflows.list()}
        assert listed[a].state == "completed" and listed[a].steps == 3 and listed[a].completed == 3
        assert listed[b].state == "failed" and listed[b].failed_step == "1.1"
        assert [w.id for w in await workflows.list(failed=True)] == [b]
        view = await workflows.show(b)
    assert view is not None
    assert view.plan_steps == ["0", "1.0", "1.1"]
    failed = view.steps["1.1"]
    assert (failed.state, failed.attempt, failed.error_type, failed.error, failed.queue, failed.message_id) == (
        "failed", 3, "builtins.ValueError", "boom", "svc.t.a.v1.dlq", "m-1")
    assert view.steps["0"].result_type == "t.r.v1" and view.steps["err"].state == "completed"


async def test_concurrent_members_fire_once_and_a_dead_firer_is_replaced_after_its_lease(redis_prefix: str) -> None:
    stores = [RedisStore(REDIS_URL, prefix=redis_prefix, ttl=TTL) for _ in range(3)]
    workflow_id, size = str(uuid.uuid4()), 25
    calls = [(i, s) for i in range(size) for s in stores] * 2
    random.Random(1).shuffle(calls)
    outcomes = await asyncio.gather(*(
        store.count(workflow_id, "g", i, size, b"%d" % i, token=uuid.uuid4().hex, lease_ms=300) for i, store in calls))
    fires = [o for o in outcomes if o.outcome == "fire"]
    assert len(fires) == 1 and fires[0].counted == size
    assert sum(o.added for o in outcomes) == size  # each index stored once
    assert await stores[0].results(workflow_id, "g", size) == list(range(size))
    # the firer dies without marking: while its lease lives a redelivery waits, after it one fires
    again = await stores[1].count(workflow_id, "g", 3, size, b"3", token="t2", lease_ms=300)
    assert again.outcome == "busy" and 0 < again.lease_ms <= 300
    await asyncio.sleep(0.4)
    again = await stores[1].count(workflow_id, "g", 3, size, b"3", token="t2", lease_ms=300)
    assert again.outcome == "fire"
    await stores[1].mark_fired(workflow_id, "g", token="t2", size=size, counted=size, callbacks=["1"])
    late = await stores[2].count(workflow_id, "g", 3, size, b"3", token="t3", lease_ms=300)
    assert late.outcome == "done"
    assert all(0 < ttl <= TTL for ttl in _ttls(redis_prefix).values())
    for store in stores:
        await store.close()


async def test_the_engine_reads_a_started_report_larger_than_the_bus_limit(vhost_url: str, redis_prefix: str) -> None:
    workflow_id = str(uuid.uuid4())
    steps = [{"kind": "step", "step": f"0.{i}", "type": "tasks.wf_engine_test.a_rather_long_task_name.v1",
              "result_type": "tasks.wf_engine_test.a_rather_long_result_name.v1"} for i in range(12_000)]
    plan = {"kind": "chain", "steps": [{"kind": "group", "group": "0", "members": steps}]}
    handled = Handled()
    async with EventBus(_settings(vhost_url), middleware=[handled]) as bus:
        assert bus.settings.limits.max_body_bytes == 1 << 20
        WorkflowEngine(bus, REDIS_URL, prefix=redis_prefix, ttl=TTL)
        await bus.start()
        started = WorkflowStarted(workflow_id=workflow_id, plan=plan, started_at=datetime.now(UTC))
        assert len(started.model_dump_json()) > 1 << 20
        await bus.publish(started)
        await _until(lambda: handled.count == 1)
    async with Workflows(REDIS_URL, prefix=redis_prefix) as workflows:
        view = await workflows.show(workflow_id)
    assert view is not None and len(view.plan_steps) == 12_000 and view.state == "running"
