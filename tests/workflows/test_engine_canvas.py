"""The engine with the canvas and the step runtime, end to end on the real broker (a private vhost) and
Redis (a private prefix): a group of 1 000 runs each member once and is tracked completed; nested chords
fire once each with their results in order; a failed step with on_error shows failed, and ``retry``
resumes it once its cause is fixed, through to completed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from eventbus import BusSettings, EventBus, ExponentialBackoff, RetryPolicy, consumer_queue_name, dead_letter_queue_name
from eventbus.workflow_engine import WorkflowEngine, Workflows
from eventbus.workflows import WorkflowFailed, chain, chord, group

from .._databases import REDIS_URL
from .._vhosts import amqp_url, private_vhost
from ._models import Profile, Summary

pytestmark = [pytest.mark.broker, pytest.mark.redis]

FAST = RetryPolicy(max_attempts=2, backoff=ExponentialBackoff(first=0.1, factor=1, maximum=0.2, jitter=0))


@pytest.fixture
def url() -> Iterator[str]:
    with private_vhost("wf-e2e") as vhost:
        yield amqp_url(vhost)


def _settings(url: str) -> BusSettings:
    return BusSettings(urls=(url,), service="wf-e2e", handler_timeout=30, shutdown_grace=5, prefetch=200)


async def _until(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


async def _state(workflows: Workflows, workflow_id: str) -> str | None:
    view = await workflows.show(workflow_id)
    return view.state if view is not None else None


async def test_a_group_of_a_thousand_runs_each_member_once_and_is_tracked_completed(url: str,
                                                                                     redis_prefix: str) -> None:
    runs: list[int] = []
    async with EventBus(_settings(url)) as bus, Workflows(REDIS_URL, prefix=redis_prefix) as workflows:

        @bus.task
        async def square(n: int) -> None:
            runs.append(n)

        WorkflowEngine(bus, REDIS_URL, prefix=redis_prefix)
        await bus.start()
        workflow_id = await bus.start(group(square.si(n=i) for i in range(1000)))

        async def done() -> bool:
            return await _state(workflows, workflow_id) == "completed"

        await _until(done)
        listed = await workflows.list()
        view = await workflows.show(workflow_id)
    assert sorted(runs) == list(range(1000))
    assert [(w.id, w.steps, w.completed) for w in listed] == [(workflow_id, 1000, 1000)]
    assert view is not None and {s.state for s in view.steps.values()} == {"completed"}
    assert {s.attempt for s in view.steps.values()} == {1}


async def test_nested_chords_fire_once_each_with_results_in_order(url: str, redis_prefix: str) -> None:
    totals: list[list[str]] = []
    grand: list[list[int]] = []
    async with EventBus(_settings(url)) as bus, Workflows(REDIS_URL, prefix=redis_prefix) as workflows:

        @bus.task
        async def fetch(user_id: str) -> Profile:
            await asyncio.sleep(0.01 * (5 - len(user_id)))  # later members finish first
            return Profile(user_id=user_id, score=len(user_id))

        @bus.task
        async def total(profiles: list[Profile]) -> Summary:
            totals.append([p.user_id for p in profiles])
            return Summary(total=sum(p.score for p in profiles), users=[p.user_id for p in profiles])

        @bus.task
        async def overall(summaries: list[Summary]) -> Summary:
            grand.append([s.total for s in summaries])
            return Summary(total=sum(s.total for s in summaries))

        WorkflowEngine(bus, REDIS_URL, prefix=redis_prefix)
        await bus.start()
        inner_a = chord(group(fetch.si("a"), fetch.si("bb"), fetch.si("ccc")), total.s())
        inner_b = chord(group(fetch.si("dddd"), fetch.si("e")), total.s())
        workflow_id = await bus.start(chain(fetch.si("x"), chord(group(inner_a, inner_b), overall.s())))

        async def done() -> bool:
            return await _state(workflows, workflow_id) == "completed"

        await _until(done)
        view = await workflows.show(workflow_id)
    assert sorted(totals) == [["a", "bb", "ccc"], ["dddd", "e"]]
    assert grand == [[6, 5]]
    assert view is not None and len(view.joins) == 3
    assert all(j.counted == j.size for j in view.joins.values())
    assert {s.state for s in view.steps.values()} == {"completed"}


async def test_a_failed_step_runs_on_error_and_retry_resumes_it_to_completion(url: str, redis_prefix: str) -> None:
    broken = True
    after: list[str] = []
    failures: list[WorkflowFailed] = []
    async with EventBus(_settings(url)) as bus, Workflows(REDIS_URL, bus, prefix=redis_prefix) as workflows:

        @bus.task
        async def fetch(user_id: str) -> Profile:
            return Profile(user_id=user_id, score=1)

        @bus.task(retry=FAST)
        async def enrich(profile: Profile) -> Profile:
            if broken:
                raise RuntimeError(f"no score service for {profile.user_id}")
            return Profile(user_id=profile.user_id, score=42)

        @bus.task
        async def store(user_id: str, score: int) -> None:
            after.append(f"{user_id}:{score}")

        @bus.task
        async def on_failure(failure: WorkflowFailed) -> None:
            failures.append(failure)

        WorkflowEngine(bus, REDIS_URL, prefix=redis_prefix)
        await bus.start()
        workflow_id = await bus.start(chain(fetch.si("dave"), enrich.s(), store.s()), on_error=on_failure.s())

        async def failed() -> bool:
            return await _state(workflows, workflow_id) == "failed" and len(failures) == 1

        await _until(failed)
        view = await workflows.show(workflow_id)
        assert [w.id for w in await workflows.list(failed=True)] == [workflow_id]
        broken = False  # the cause is fixed
        assert await workflows.retry(workflow_id) == ["1"]
        assert await workflows.list(failed=True) == []

        async def completed() -> bool:
            return await _state(workflows, workflow_id) == "completed"

        await _until(completed)
        resumed = await workflows.show(workflow_id)
    assert view is not None and view.state == "failed" and view.failed_step == "1"
    step = view.steps["1"]
    queue = dead_letter_queue_name(consumer_queue_name("wf-e2e", enrich.type))
    assert (step.state, step.attempt, step.queue) == ("failed", 2, queue)
    assert "no score service for dave" in (step.error or "") and (step.error_type or "").endswith("RuntimeError")
    assert view.steps["2"].state == "pending"
    assert failures[0].step == "1" and failures[0].queue == queue
    assert after == ["dave:42"]
    assert resumed is not None and resumed.state == "completed"
    assert [resumed.steps[s].state for s in ("0", "1", "2")] == ["completed"] * 3
