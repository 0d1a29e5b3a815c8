"""Chains and groups on the in-memory broker: the same consumer code moves them on, no RabbitMQ."""

from __future__ import annotations

import orjson

from eventbus.testing import MemoryBroker, memory_bus
from eventbus.workflows import ENGINE_QUEUE, chain, group

from ._models import Profile


async def test_a_chain_and_a_group_run_on_the_memory_broker() -> None:
    broker = MemoryBroker()
    worker, starter = memory_bus(broker, "wf-memory"), memory_bus(broker, "starter")
    seen: list[tuple[str, object]] = []

    @worker.task
    async def fetch(user_id: str) -> Profile:
        seen.append(("fetch", user_id))
        return Profile(user_id=user_id, score=10)

    @worker.task
    def bump(profile: Profile, by: int = 1) -> Profile:  # a sync task
        seen.append(("bump", by))
        return Profile(user_id=profile.user_id, score=profile.score + by)

    @worker.task
    async def record(user_id: str, score: int) -> None:
        seen.append(("record", (user_id, score)))

    await worker.start()
    try:
        workflow_id = await starter.start(chain(fetch.si("u1"), bump.s(by=5), record.s()))
        await broker.settle()
        assert seen == [("fetch", "u1"), ("bump", 5), ("record", ("u1", 15))]
        seen.clear()
        await starter.start(chain(fetch.si("u2"), group(bump.s(by=i) for i in range(4))))
        await broker.settle()
        assert sorted(str(s) for s in seen) == sorted(str(s) for s in
                                                       [("fetch", "u2"), *(("bump", i) for i in range(4))])
        reports = [orjson.loads(m.body) for m in broker.messages(ENGINE_QUEUE)]
        joins = sorted((r["join"]["index"], r["join"]["result"]["score"]) for r in reports
                       if r.get("join") is not None)
        assert joins == [(i, 10 + i) for i in range(4)]  # the engine counts them; no engine here
        completed = [r for r in reports if r.get("workflow_id") == workflow_id and "finished_at" in r]
        assert sorted(r["step"] for r in completed) == ["0", "1", "2"]
    finally:
        await worker.close(grace=0)
        await starter.close(grace=0)
