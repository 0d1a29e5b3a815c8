"""Tasks and request-reply on the in-memory broker (no RabbitMQ): the same code above the seam."""

from __future__ import annotations

import pytest

from eventbus import RemoteTaskError, RequestTimeoutError, RetryPolicy
from eventbus.testing import MemoryBroker, memory_bus
from eventbus_contracts import REGISTRY, FriendshipStatusChangedV1

STATUS = REGISTRY.get("context.friendship.status_changed.v1")


async def test_a_task_is_delayed_and_answers_requests_on_the_memory_broker() -> None:
    broker = MemoryBroker()
    worker, caller = memory_bus(broker, "scorer"), memory_bus(broker, "caller")
    runs: list[float] = []

    @worker.task(retry=RetryPolicy.never())
    async def score(points: float) -> FriendshipStatusChangedV1:
        runs.append(points)
        if points < 0:
            raise ValueError("negative")
        return STATUS.validate_python({**STATUS.schema["examples"][0], "score": points})

    await worker.start()
    try:
        await score.delay(points=1.5)
        await broker.settle()
        assert runs == [1.5]
        result = await caller.request(score.message(7.0), reply=FriendshipStatusChangedV1, timeout=5)
        assert result.score == 7.0
        with pytest.raises(RemoteTaskError) as raised:
            await caller.request(score.message(-1.0), reply=FriendshipStatusChangedV1, timeout=5)
        assert (raised.value.remote_type, raised.value.remote_message) == ("builtins.ValueError", "negative")
        await worker.stop(grace=0)
        with pytest.raises(RequestTimeoutError):
            await caller.request(score.message(2.0), reply=None, timeout=0.2)
    finally:
        await worker.close(grace=0)
        await caller.close(grace=0)


async def test_a_result_without_a_contract_answers_with_a_contract_error() -> None:
    broker = MemoryBroker()
    worker, caller = memory_bus(broker, "adder"), memory_bus(broker, "caller")

    @worker.task
    def add(a: int, b: int) -> int:
        return a + b

    await worker.start()
    try:
        with pytest.raises(RemoteTaskError) as raised:
            await caller.request(add.message(1, 2), reply=None, timeout=5)
        assert raised.value.remote_type.endswith("ContractError")
        assert "returned a int, not a model of a contract" in raised.value.remote_message
    finally:
        await worker.close(grace=0)
        await caller.close(grace=0)
