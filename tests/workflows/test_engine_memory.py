"""The engine on the in-memory broker (``eventbus.testing.memory_workflows``): chords, cancel, tracking
and retry without Redis or RabbitMQ, through the same engine code as on Redis."""

from __future__ import annotations

from typing import Any

import pytest

from eventbus import ConfigurationError, ExponentialBackoff, RetryPolicy
from eventbus.testing import MemoryBroker, memory_bus, memory_workflows
from eventbus.workflow_engine import WorkflowEngine, Workflows
from eventbus.workflows import WorkflowFailed, chain, chord, group

from ._models import Profile, Summary

FAST = RetryPolicy(max_attempts=2, backoff=ExponentialBackoff(first=0.1, factor=1, maximum=0.1, jitter=0))


async def test_a_chord_fires_once_with_results_in_order_and_a_cancelled_one_never() -> None:
    broker = MemoryBroker()
    bus = memory_bus(broker, "wf-mem")
    totals: list[list[str]] = []

    @bus.task
    async def fetch(user_id: str) -> Profile:
        return Profile(user_id=user_id, score=len(user_id))

    @bus.task
    async def total(profiles: list[Profile]) -> Summary:
        totals.append([p.user_id for p in profiles])
        return Summary(total=sum(p.score for p in profiles))

    store = memory_workflows(broker)
    engine = WorkflowEngine(bus, store=store)
    await bus.start()
    try:
        users = [f"u{i}" for i in range(30)]
        workflow_id = await bus.start(chord(group(fetch.si(u) for u in users), total.s()))
        await broker.settle()
        assert totals == [users] and engine.fired == 1
        workflows = Workflows(store=store)
        view = await workflows.show(workflow_id)
        assert view is not None and view.state == "completed"
        assert view.joins["0"].counted == 30 and len(view.steps) == 31

        await bus.cancel(cancelled := "wf-cancelled")
        await bus.start(chord(group(fetch.si(u) for u in users[:3]), total.s()), workflow_id=cancelled)
        await broker.settle()
        assert len(totals) == 1 and engine.fired == 1
        cancelled_view = await workflows.show(cancelled)
        assert cancelled_view is not None and cancelled_view.state == "cancelled"
    finally:
        await bus.close(grace=0)


@pytest.mark.parametrize("nested", [False, True])
async def test_a_failed_step_is_tracked_and_retry_resumes_it(nested: bool) -> None:
    broker = MemoryBroker()
    bus = memory_bus(broker, "wf-mem")
    broken = True
    done: list[int] = []
    failures: list[WorkflowFailed] = []

    @bus.task
    async def fetch(user_id: str) -> Profile:
        return Profile(user_id=user_id, score=1)

    @bus.task(retry=FAST)
    async def enrich(profile: Profile) -> Profile:
        if broken:
            raise RuntimeError("enrichment is down")
        return Profile(user_id=profile.user_id, score=7)

    @bus.task
    async def total(profiles: list[Profile]) -> Summary:
        done.append(sum(p.score for p in profiles))
        return Summary(total=done[-1])

    @bus.task
    async def on_failure(failure: WorkflowFailed) -> None:
        failures.append(failure)

    store = memory_workflows(broker)
    WorkflowEngine(bus, store=store)
    await bus.start()
    try:
        first = chain(fetch.si("a"), enrich.s()) if nested else enrich.si(Profile(user_id="a", score=1))
        members = [first, fetch.si("b")]
        workflow_id = await bus.start(chord(group(*members), total.s()), on_error=on_failure.s())
        await broker.settle()
        await broker.clock.advance(1)
        await broker.settle()
        workflows = Workflows(store=store, bus=bus)
        view = await workflows.show(workflow_id)
        assert view is not None and view.state == "failed" and done == [] and len(failures) == 1
        assert [w.id for w in await workflows.list(failed=True)] == [workflow_id]
        broken = False
        assert await workflows.retry(workflow_id) == [failures[0].step]
        await broker.settle()
        view = await workflows.show(workflow_id)
        assert view is not None and view.state == "completed" and done == [8]
    finally:
        await bus.close(grace=0)


async def test_results_that_do_not_fit_the_callback_fail_the_workflow_at_the_join() -> None:
    from datetime import UTC, datetime

    from eventbus.workflows._reports import JoinReport, StepCompleted
    from eventbus.workflows._slip import report_id

    broker = MemoryBroker()
    bus = memory_bus(broker, "wf-mem")
    ran: list[object] = []
    failures: list[WorkflowFailed] = []

    @bus.task
    async def total(profiles: list[Profile]) -> None:
        ran.append(profiles)

    @bus.task
    async def on_failure(failure: WorkflowFailed) -> None:
        failures.append(failure)

    store = memory_workflows(broker)
    WorkflowEngine(bus, store=store)
    await bus.start()
    try:
        callback = {"step": "1", "type": total.type, "exchange": "tasks", "routing_key": total.type, "args": {},
                    "input": "field", "field": "profiles"}
        on_error = [{"step": "err", "type": on_failure.type, "exchange": "tasks", "routing_key": on_failure.type,
                     "args": {}, "input": "field", "field": "failure"}]
        now = datetime.now(UTC)
        for index in range(2):  # results that are not profiles
            join = JoinReport(group="0", index=index, size=2, result={"nope": index}, next=[callback],
                              on_error=on_error)
            await bus.publish(StepCompleted(workflow_id="w", step=f"0.{index}", type="x.v1", attempt=1,
                                            started_at=now, finished_at=now, join=join),
                              event_id=report_id("w", f"0.{index}", "completed"))
        await broker.settle()
        assert ran == [] and [(f.step, f.reason, f.queue) for f in failures] == [("1", "workflow_result_invalid", "")]
        workflows = Workflows(store=store, bus=bus)
        view = await workflows.show("w")
        assert view is not None and view.state == "failed" and view.failed_step == "1"
        assert view.joins["0"].counted == 2 and view.joins["0"].callbacks == ["err"]
        with pytest.raises(ConfigurationError, match="nothing to replay"):
            await workflows.retry("w")
    finally:
        await bus.close(grace=0)


async def test_a_retry_whose_message_is_gone_leaves_the_workflow_failed() -> None:
    broker = MemoryBroker()
    bus = memory_bus(broker, "wf-mem")

    @bus.task(retry=FAST)
    async def explode(user_id: str) -> None:
        raise RuntimeError("down")

    store = memory_workflows(broker)
    WorkflowEngine(bus, store=store)
    await bus.start()
    try:
        workflow_id = await bus.start(explode.si("a"))
        await broker.settle()
        await broker.clock.advance(1)
        await broker.settle()
        workflows = Workflows(store=store, bus=bus)
        view = await workflows.show(workflow_id)
        assert view is not None and view.state == "failed"
        broker.purge(view.steps["0"].queue or "")
        with pytest.raises(ConfigurationError, match="is not in"):
            await workflows.retry(workflow_id)
        again = await workflows.show(workflow_id)
        assert again is not None and again.state == "failed" and again.steps["0"].state == "failed"
        assert [w.id for w in await workflows.list(failed=True)] == [workflow_id]
    finally:
        await bus.close(grace=0)


async def test_a_group_of_groups_joins_inner_groups_into_the_outer_one() -> None:
    broker = MemoryBroker()
    bus = memory_bus(broker, "wf-mem")
    got: list[Any] = []

    @bus.task
    async def fetch(user_id: str) -> Profile:
        return Profile(user_id=user_id, score=len(user_id))

    @bus.task
    async def nested(groups: list[Any]) -> None:
        got.append([[p["user_id"] for p in g] for g in groups])

    store = memory_workflows(broker)
    WorkflowEngine(bus, store=store)
    await bus.start()
    try:
        inner = (group(fetch.si("a"), fetch.si("bb")), group(fetch.si("c"), fetch.si("d"), fetch.si("e")))
        workflow_id = await bus.start(chord(group(*inner), nested.s()))
        await broker.settle()
        assert got == [[["a", "bb"], ["c", "d", "e"]]]
        view = await Workflows(store=store).show(workflow_id)
        assert view is not None and view.state == "completed"
        # an inner join fires into the outer one (no message of its own); the outer one publishes the callback
        assert {g: (j.counted, j.callbacks) for g, j in view.joins.items()} == {
            "0.0": (2, []), "0.1": (3, []), "0": (2, ["0.cb"])}
    finally:
        await bus.close(grace=0)
