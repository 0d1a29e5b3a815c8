"""The daily decay recompute as a chord on the real broker (a private vhost), PostgreSQL and Redis (a
private prefix): two replicas run the shards, the engine joins them, the callback runs once, and its
report and effects are those of the whole recompute, in one process, on a copy of the same data."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from context_handling import decay, decay_chord
from context_handling.app import ContextHandlingService
from context_handling.cache import MemoryCandidateCache
from context_handling.jobs import decay_recompute
from context_handling.settings import ServiceSettings
from eventbus import BusSettings, ParkMessage, consumer_queue_name, dead_letter_queue_name
from eventbus.workflow_engine import Workflows
from eventbus.workflows import ENGINE_QUEUE
from tests._queues import queue_depth as _depth

from .._databases import REDIS_URL
from .._vhosts import amqp_url, private_vhost
from .test_decay_shards import MIDNIGHT, _effects, _loaded

pytestmark = [pytest.mark.broker, pytest.mark.postgres, pytest.mark.redis]

SHARDS = 4


@pytest.fixture
def vhost_url() -> Iterator[str]:
    with private_vhost("ctx-decay") as vhost:
        yield amqp_url(vhost)


async def _until(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def _settings(vhost_url: str, postgres_url: str, redis_prefix: str, **changes: object) -> ServiceSettings:
    bus = BusSettings(urls=(vhost_url,), service=f"ctx-{uuid.uuid4().hex[:8]}", shutdown_grace=5)
    return ServiceSettings(
        bus=bus,
        database_url=postgres_url,
        redis_url=REDIS_URL,
        cache_prefix=redis_prefix,
        workflow_prefix=f"{redis_prefix}wf:",
        decay_shards=SHARDS,
        http=None,
        scheduler=False,
        **changes,  # type: ignore[arg-type]
    )


async def test_the_daily_recompute_runs_as_a_chord_of_shards_and_adds_up_to_the_whole(
    vhost_url: str, postgres_url: str, sqlite_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[int] = []

    def counted(storage: Any, midnight: Any, *, shard: int, **kwargs: Any) -> Any:
        runs.append(shard)
        return decay.lower_decayed(storage, midnight, shard=shard, **kwargs)

    monkeypatch.setattr(decay_chord, "lower_decayed", counted)
    sharded_db, whole_db = _loaded(postgres_url), _loaded(sqlite_url)
    before = _effects(sharded_db)
    whole = decay_recompute(whole_db, MemoryCandidateCache(ttl=3600), MIDNIGHT)
    config = _settings(vhost_url, postgres_url, redis_prefix)
    assert config.decay_as_chord
    replicas = [ContextHandlingService(config), ContextHandlingService(config)]
    try:
        for replica in replicas:
            await replica.start()
        workflow_id = await replicas[0].run_job("decay-recompute", at=MIDNIGHT)  # what the daily tick does
        assert workflow_id == replicas[1].decay_chord.workflow_id(MIDNIGHT)  # type: ignore[union-attr]
        await _until(lambda: any(r.last_decay is not None for r in replicas))
        async with Workflows(REDIS_URL, prefix=config.workflow_prefix) as workflows:
            view = await _until_state(workflows, workflow_id, "completed")
            assert sorted(runs) == list(range(SHARDS))

            # the tick run again (a scheduler that crashed mid-job), here by the other replica: the same
            # workflow, whose shards run again and change nothing, and whose join does not fire again
            assert await replicas[1].run_job("decay-recompute", at=MIDNIGHT) == workflow_id
            await _until(lambda: len(runs) == 2 * SHARDS)
            await _until_reported_again(workflows, workflow_id, view)
            again = await workflows.show(workflow_id)
            assert again is not None and again.state == "completed" and again.joins["0"].counted == SHARDS
    finally:
        for replica in replicas:
            await replica.stop(grace=5)  # in-flight engine reports finish first
        sharded_db.engine.dispose()
        whole_db.engine.dispose()
    assert _depth(vhost_url, ENGINE_QUEUE) == 0, "every report was handled"
    assert replicas[0].decay_chord is not None
    assert _depth(vhost_url, consumer_queue_name(config.service, replicas[0].decay_chord.done_task.type)) == 0

    recorded = [r.last_decay for r in replicas if r.last_decay is not None]
    assert len(recorded) == 1, "the callback ran once"
    examined = [r.metrics.registry.get_sample_value("context_decay_pairs_examined_total") for r in replicas]
    assert sum(examined) == whole.examined, "and was recorded once"  # type: ignore[arg-type]
    assert sum(whole.lowered.values()) > 20, "a recompute worth testing"
    assert recorded[0] == whole, "the shards add up to the whole recompute"
    assert _effects(sharded_db) == _effects(whole_db) != before, "the same statuses and status_changed events"

    assert view is not None and view.state == "completed"
    members = [f"0.{i}" for i in range(SHARDS)]
    assert sorted(view.steps) == sorted([*members, "0.cb"])
    assert all(view.steps[s].state == "completed" for s in view.steps)
    assert {view.steps[s].result_type for s in members} == {"context.decay.shard_report.v1"}
    assert view.joins["0"].counted == SHARDS and view.joins["0"].callbacks == ["0.cb"]


async def _until_reported_again(workflows: Workflows, workflow_id: str, first: Any) -> None:
    """Until the engine has tracked every member's second report (a later finish time)."""
    deadline = time.monotonic() + 30
    while True:
        view = await workflows.show(workflow_id)
        members = [step for name, step in view.steps.items() if name != "0.cb"]
        if all(step.finished_at > first.steps[step.step].finished_at for step in members):
            return
        assert time.monotonic() < deadline, f"the second reports were not tracked: {view}"
        await asyncio.sleep(0.05)




def test_without_redis_or_with_one_shard_the_recompute_stays_in_process(postgres_url: str) -> None:
    assert not ServiceSettings(database_url=postgres_url, http=None).decay_as_chord  # no Redis for the joins
    assert not ServiceSettings(redis_url=REDIS_URL, decay_shards=1).decay_as_chord
    assert ServiceSettings(redis_url=REDIS_URL).decay_as_chord


class ShardDown(ParkMessage):
    def __init__(self) -> None:
        super().__init__("test_shard_down")


async def test_a_failing_shard_fails_the_recompute_with_on_error_and_a_retry_completes_it(
    vhost_url: str, postgres_url: str, sqlite_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sharded_db, whole_db = _loaded(postgres_url), _loaded(sqlite_url)
    whole = decay_recompute(whole_db, MemoryCandidateCache(ttl=3600), MIDNIGHT)
    broken = {1}

    def lower_or_fail(storage: Any, midnight: Any, *, shard: int, **kwargs: Any) -> Any:
        if shard in broken:
            raise ShardDown()  # parked at once: the step fails for good
        return decay.lower_decayed(storage, midnight, shard=shard, **kwargs)

    monkeypatch.setattr(decay_chord, "lower_decayed", lower_or_fail)
    config = _settings(vhost_url, postgres_url, redis_prefix)
    service = ContextHandlingService(config)
    try:
        await service.start()
        workflow_id = await service.run_job("decay-recompute", at=MIDNIGHT)
        await _until(lambda: service.metrics.registry.get_sample_value("context_decay_failed_total") == 1)  # on_error
        async with Workflows(REDIS_URL, settings=config.bus, prefix=config.workflow_prefix) as workflows:
            failed = await _until_state(workflows, workflow_id, "failed")
            assert failed.failed_step == "0.1"
            step = failed.steps["0.1"]
            assert (step.reason, step.error_type) == ("test_shard_down", "ShardDown")
            assert service.decay_chord is not None
            shard_queue = consumer_queue_name(config.service, service.decay_chord.shard_task.type)
            assert step.queue == dead_letter_queue_name(shard_queue)
            assert failed.steps["0.cb"].state == "pending" and service.last_decay is None, "no callback"

            broken.clear()  # the cause fixed: the parked shard runs again and the recompute completes
            assert await workflows.retry(workflow_id) == ["0.1"]
            await _until_state(workflows, workflow_id, "completed")
        await _until(lambda: service.last_decay is not None)
    finally:
        await service.stop(grace=5)
        sharded_db.engine.dispose()
        whole_db.engine.dispose()
    assert service.last_decay == whole
    assert _effects(sharded_db) == _effects(whole_db)


async def _until_state(workflows: Workflows, workflow_id: str, state: str) -> Any:
    deadline = time.monotonic() + 30
    while True:
        view = await workflows.show(workflow_id)
        if view is not None and view.state == state:
            return view
        assert time.monotonic() < deadline, f"workflow not {state}: {view}"
        await asyncio.sleep(0.05)
