"""Workflows on the real broker, each test in a private vhost: chains, a group of 50, a nested canvas
(read off the engine queue: no engine runs here), failure with on_error, bad slips and bad results."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Annotated, Any

import orjson
import pika
import pytest
from pydantic import Field

from eventbus import (
    BusSettings,
    EventBus,
    ExponentialBackoff,
    RetryPolicy,
    SyncEventBus,
    consumer_queue_name,
    dead_letter_queue_name,
)
from eventbus.workflows import ENGINE_QUEUE, SLIP_HEADER, STEP_HEADER, WORKFLOW_HEADER, WorkflowFailed, chain, group
from eventbus.workflows._slip import report_id, step_event_id
from tests._queues import until

from .._vhosts import amqp_url, private_vhost
from ._models import Profile, Summary

pytestmark = pytest.mark.broker

FAST = RetryPolicy(max_attempts=2, backoff=ExponentialBackoff(first=0.1, factor=1, maximum=0.2, jitter=0))
REASON = "eventbus-park-reason"


@pytest.fixture
def url() -> Iterator[str]:
    with private_vhost("workflows") as vhost:
        yield amqp_url(vhost)


def _settings(url: str, service: str = "wf-svc") -> BusSettings:
    return BusSettings(urls=(url,), service=service, handler_timeout=10, shutdown_grace=2)


def _drain(url: str, queue: str) -> list[tuple[pika.BasicProperties, bytes]]:
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


async def _reports(url: str, count: int) -> list[dict[str, Any]]:
    """At least ``count`` reports from the engine queue (type and data)."""
    found: list[dict[str, Any]] = []

    def enough() -> bool:
        found.extend({**orjson.loads(b), "report": p.headers["cloudEvents_type"], "id": p.message_id}
                     for p, b in _drain(url, ENGINE_QUEUE))
        return len(found) >= count

    await until(enough)
    await asyncio.sleep(0.3)
    found.extend({**orjson.loads(b), "report": p.headers["cloudEvents_type"], "id": p.message_id}
                 for p, b in _drain(url, ENGINE_QUEUE))
    return found


async def test_a_chain_of_three_typed_tasks_and_a_step_given_its_payload(url: str) -> None:
    finals: list[Summary] = []
    async with EventBus(_settings(url)) as bus:

        @bus.task
        async def fetch(user_id: str) -> Profile:
            return Profile(user_id=user_id, score=len(user_id))

        @bus.task
        async def bump(profile: Profile, by: int = 1) -> Profile:
            return Profile(user_id=profile.user_id, score=profile.score + by)

        @bus.task
        async def summarize(user_id: str, score: int) -> Summary:
            summary = Summary(total=score, users=[user_id])
            finals.append(summary)
            return summary

        await bus.start()
        workflow_id = await bus.start(chain(fetch.si("alice"), bump.s(by=10), summarize.s()))
        await until(lambda: len(finals) == 1)
        assert finals == [Summary(total=15, users=["alice"])]
        # .si: the last step ignores the previous result and runs with its own payload
        await bus.start(chain(fetch.si("bob"), bump.s(), summarize.si(user_id="zed", score=99)))
        await until(lambda: len(finals) == 2)
        assert finals[1] == Summary(total=99, users=["zed"])
        reports = await _reports(url, 8)
    started = [r for r in reports if r["report"] == "eventbus.workflow.started.v1" and r["workflow_id"] == workflow_id]
    assert [s["plan"]["steps"][2]["result_type"] for s in started] == ["test.workflow.summary.v1"]
    completed = {r["step"]: r for r in reports if r["report"] == "eventbus.workflow.step_completed.v1"
                 and r["workflow_id"] == workflow_id}
    assert sorted(completed) == ["0", "1", "2"]
    assert completed["2"]["result_type"] == "test.workflow.summary.v1" and completed["2"]["join"] is None
    assert completed["1"]["id"] == report_id(workflow_id, "1", "completed")


async def test_a_group_of_fifty_runs_each_member_once(url: str) -> None:
    runs: list[int] = []
    async with EventBus(_settings(url)) as bus:

        @bus.task
        async def square(n: int) -> None:
            runs.append(n * n)

        await bus.start()
        await bus.start(group(square.si(n=i) for i in range(50)))
        await until(lambda: len(runs) == 50)
        await asyncio.sleep(0.3)
    assert sorted(runs) == [i * i for i in range(50)]


async def test_a_chain_whose_middle_is_a_group_feeding_a_callback_reports_its_joins(url: str) -> None:
    called: list[Any] = []
    async with EventBus(_settings(url)) as bus:

        @bus.task
        async def fetch(user_id: str) -> Profile:
            return Profile(user_id=user_id, score=1)

        @bus.task
        async def bump(profile: Profile, by: int = 1) -> Profile:
            return Profile(user_id=profile.user_id, score=profile.score + by)

        @bus.task
        async def total(profiles: list[Profile]) -> Summary:
            called.append(profiles)
            return Summary(total=sum(p.score for p in profiles))

        await bus.start()
        workflow_id = await bus.start(chain(fetch.si("carol"), group(bump.s(by=1), bump.s(by=2)), total.s()))
        reports = await _reports(url, 4)
    mine = [r for r in reports if r["workflow_id"] == workflow_id]
    completed = {r["step"]: r for r in mine if r["report"] == "eventbus.workflow.step_completed.v1"}
    assert sorted(completed) == ["0", "1.0", "1.1"]
    assert completed["0"]["join"] is None
    joins = sorted((r["join"]["group"], r["join"]["index"], r["join"]["size"], r["join"]["result"]["score"])
                   for r in (completed["1.0"], completed["1.1"]))
    assert joins == [("1", 0, 2, 2), ("1", 1, 2, 3)]
    callback = completed["1.0"]["join"]["next"]
    assert callback == [{"step": "2", "type": total.type, "exchange": "tasks",
                         "routing_key": total.type, "args": {}, "input": "field", "field": "profiles"}]
    started = next(r for r in mine if r["report"] == "eventbus.workflow.started.v1")
    assert [n["kind"] for n in started["plan"]["steps"]] == ["step", "group", "step"]
    assert called == []  # the callback waits for the engine


async def test_a_step_that_exhausts_its_retries_fails_the_workflow_and_runs_on_error(url: str) -> None:
    later: list[str] = []
    failures: list[WorkflowFailed] = []
    attempts: list[int] = []
    async with EventBus(_settings(url)) as bus:

        @bus.task
        async def fetch(user_id: str) -> Profile:
            return Profile(user_id=user_id, score=1)

        @bus.task(retry=FAST)
        async def explode(profile: Profile) -> Profile:
            attempts.append(1)
            raise RuntimeError(f"no score for {profile.user_id}")

        @bus.task
        async def after(user_id: str, score: int) -> None:
            later.append(user_id)

        @bus.task
        async def on_failure(failure: WorkflowFailed) -> None:
            failures.append(failure)

        await bus.start()
        workflow_id = await bus.start(chain(fetch.si("dave"), explode.s(), after.s()), on_error=on_failure.s())
        await until(lambda: len(failures) == 1)
        await asyncio.sleep(0.5)
        reports = await _reports(url, 3)
    assert later == [] and len(attempts) == 2
    failure = failures[0]
    queue = dead_letter_queue_name(consumer_queue_name("wf-svc", explode.type))
    assert (failure.workflow_id, failure.step, failure.type, failure.attempt, failure.queue) == (
        workflow_id, "1", explode.type, 2, queue)
    assert failure.message_id == step_event_id(workflow_id, "1")
    assert "no score for dave" in failure.error and failure.error_type.endswith("RuntimeError")
    failed = [r for r in reports if r["report"] == "eventbus.workflow.failed.v1"]
    assert [(r["workflow_id"], r["step"], r["queue"], r["id"]) for r in failed] == [
        (workflow_id, "1", queue, report_id(workflow_id, "1", "failed"))]
    parked = _drain(url, queue)
    assert len(parked) == 1 and parked[0][0].headers[WORKFLOW_HEADER] == workflow_id


async def test_bad_slips_are_parked_before_the_handler_runs(url: str) -> None:
    runs: list[str] = []
    async with EventBus(_settings(url)) as bus:

        @bus.task
        async def fetch(user_id: str) -> Profile:
            runs.append(user_id)
            return Profile(user_id=user_id, score=1)

        @bus.task
        async def noop() -> None:
            return None

        await bus.start()
        await bus.start(noop.si())  # declares the engine queue, as any start does
        unknown = orjson.dumps({"v": 1, "next": [{"step": "1", "type": "tasks.nobody.here.v1", "exchange": "tasks",
                                                  "routing_key": "tasks.nobody.here.v1", "args": {},
                                                  "input": "none"}]}).decode()
        bad = {
            "malformed": {WORKFLOW_HEADER: "w-malformed", STEP_HEADER: "0", SLIP_HEADER: "{not json"},
            "oversized": {WORKFLOW_HEADER: "w-oversized", STEP_HEADER: "0",
                          SLIP_HEADER: '{"v":1,"next":[],"pad":"' + "x" * 66_000 + '"}'},
            "unknown": {WORKFLOW_HEADER: "w-unknown", STEP_HEADER: "0", SLIP_HEADER: unknown},
            "mismatched": {STEP_HEADER: "0", SLIP_HEADER: '{"v":1,"next":[]}'},
        }
        for name, headers in bad.items():
            await bus.publish(fetch.message(name), headers=headers)
        queue = dead_letter_queue_name(consumer_queue_name("wf-svc", fetch.type))
        parked: list[tuple[pika.BasicProperties, bytes]] = []
        await until(lambda: len(parked.__iadd__(_drain(url, queue))) >= 4)
        reports = await _reports(url, 4)
    assert runs == []
    assert sorted(orjson.loads(b)["user_id"] for _, b in parked) == sorted(bad)
    assert {p.headers[REASON] for p, _ in parked} == {"invalid_slip"}
    failed = {r["workflow_id"]: r for r in reports if r["report"] == "eventbus.workflow.failed.v1"}
    assert {"w-malformed", "w-oversized", "w-unknown"} <= failed.keys()
    assert "tasks.nobody.here.v1" in failed["w-unknown"]["error"]
    assert "65536" in failed["w-oversized"]["error"] and failed["w-oversized"]["reason"] == "invalid_slip"


async def test_a_result_that_breaks_the_next_contract_parks_the_step_that_made_it(url: str) -> None:
    later: list[int] = []
    async with EventBus(_settings(url)) as bus:

        @bus.task
        async def fetch(user_id: str) -> Profile:
            return Profile(user_id=user_id, score=-5)  # fits Profile, not positive's minimum

        @bus.task
        async def positive(user_id: str, score: Annotated[int, Field(ge=0)]) -> None:
            later.append(score)

        await bus.start()
        workflow_id = await bus.start(chain(fetch.si("erin"), positive.s()))
        queue = dead_letter_queue_name(consumer_queue_name("wf-svc", fetch.type))
        parked: list[tuple[pika.BasicProperties, bytes]] = []
        await until(lambda: len(parked.__iadd__(_drain(url, queue))) >= 1)
        reports = await _reports(url, 2)
    assert later == []
    assert parked[0][0].headers[REASON] == "workflow_result_invalid"
    failed = [r for r in reports if r["report"] == "eventbus.workflow.failed.v1"]
    assert [(r["workflow_id"], r["step"], r["reason"], r["attempt"]) for r in failed] == [
        (workflow_id, "0", "workflow_result_invalid", 1)]
    assert "/score" in failed[0]["error"]


def test_the_sync_bus_starts_a_workflow_and_runs_sync_steps(url: str) -> None:
    runs: list[tuple[str, int]] = []
    bus = SyncEventBus(_settings(url, "wf-sync"))

    @bus.task
    def fetch(user_id: str) -> Profile:
        return Profile(user_id=user_id, score=2)

    @bus.task
    def bump(profile: Profile, by: int = 1) -> None:
        runs.append((profile.user_id, profile.score + by))

    try:
        bus.start()
        workflow_id = bus.start(chain(fetch.si("sam"), bump.s(by=3)))
        deadline = time.monotonic() + 20
        while not runs and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        bus.close()
    assert runs == [("sam", 5)] and isinstance(workflow_id, str)
