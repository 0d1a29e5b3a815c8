"""Cancelling a canvas on the in-memory broker: a cancelled chain's pending steps never run; a step
running when its workflow is cancelled finishes, and the step it forwards is dropped.

It needs the canvas builder (``eventbus.workflows.chain``); before that is merged, it is skipped."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict

import eventbus.workflows
from eventbus import EventContract
from eventbus.testing import MemoryBroker, memory_bus

chain = getattr(eventbus.workflows, "chain", None)
pytestmark = pytest.mark.skipif(chain is None, reason="needs the canvas builder (wf-canvas)")


class Fetched(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str


def _contract() -> EventContract[Fetched]:
    schema = Fetched.model_json_schema()
    schema["$id"] = "https://eventbus.dev/test/cancel-fetched.json"
    return EventContract(type="test.workflow.cancel_fetched.v1", exchange="test.workflow", model=Fetched,
                         schema=schema)


FETCHED = _contract()


async def test_a_cancelled_chain_stops_where_it_is() -> None:
    assert chain is not None
    broker = MemoryBroker()
    worker, starter = memory_bus(broker, "wf-cancel"), memory_bus(broker, "starter")
    seen: list[str] = []
    cancel_while_running: list[str] = []

    @worker.task
    async def fetch(user_id: str) -> Fetched:
        seen.append(f"fetch {user_id}")
        for workflow_id in cancel_while_running:
            await starter.cancel(workflow_id)
        return Fetched(user_id=user_id)

    @worker.task
    async def record(user_id: str) -> None:
        seen.append(f"record {user_id}")

    await worker.start()
    try:
        cancelled = await starter.start(chain(fetch.si("never"), record.s()))
        await starter.cancel(cancelled)
        await broker.settle()
        assert seen == [] and worker.revoked_dropped == 1  # its first step was dropped before it ran

        cancel_while_running.append("wf-stop-after-first")
        await starter.start(chain(fetch.si("first"), record.s()), workflow_id="wf-stop-after-first")
        await broker.settle()
        assert seen == ["fetch first"]  # the running step finished; the step it forwarded was dropped
        assert worker.revoked_dropped == 2

        cancel_while_running.clear()
        await starter.start(chain(fetch.si("kept"), record.s()))
        await broker.settle()
        assert seen == ["fetch first", "fetch kept", "record kept"]  # other workflows run on
        for queue in broker.queues():
            if queue.startswith("wf-cancel."):
                assert broker.depth(queue) == 0, queue
    finally:
        await worker.close(grace=0)
        await starter.close(grace=0)
