"""Cancel and revoke on the in-memory broker (no RabbitMQ, no Redis): the memory bus honours the
broker's revocation store with the same consumer code as on RabbitMQ; settings and errors."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import orjson
import pytest

from eventbus import BusSettings, ConfigurationError, EventBus
from eventbus._delay import Binding, ExchangeSpec
from eventbus._topology import QueueSpec
from eventbus.testing import MemoryBroker, in_memory, memory_bus, memory_revocations
from eventbus.transports import Topology
from eventbus.workflows._forward import step_messages
from eventbus.workflows._reports import CANCELLED, REPORTS_EXCHANGE
from eventbus.workflows._slip import StepFrame, advance, step_event_id


def _step(task: Any, workflow_id: str, step: str, **args: Any) -> Any:
    """A workflow step message of ``task`` made by hand, as a canvas would (no canvas builder here)."""
    contract = task.contract
    frame = StepFrame(step, contract.type, contract.exchange, contract.routing_key, args, "none")
    (message,), join = step_messages(advance([frame], None), workflow_id=workflow_id,
                                     contracts={contract.type: contract}.get, source="/tests")
    assert join is None
    return message


async def test_a_revoked_delayed_task_never_runs_and_its_sibling_does() -> None:
    broker = MemoryBroker()
    bus = memory_bus(broker, "billing")
    store = memory_revocations(broker)
    runs: list[str] = []

    @bus.task
    async def charge(invoice: str) -> None:
        runs.append(invoice)

    await bus.start()
    try:
        revoked = await charge.apply_async(kwargs={"invoice": "revoked"}, countdown=2)
        await charge.apply_async(kwargs={"invoice": "kept"}, countdown=2)
        await bus.revoke(revoked)
        await broker.clock.advance(3)
        await broker.settle()
        assert runs == ["kept"]
        assert bus.revoked_dropped == 1
        assert store.lookups == 2  # each delayed delivery: one look-up
        await charge.delay(invoice="plain")
        await broker.settle()
        assert runs == ["kept", "plain"]
        assert store.lookups == 2  # a plain event costs none
        assert broker.depth(f"billing.{charge.type}") == 0
        assert broker.depth(f"billing.{charge.type}.dlq") == 0
    finally:
        await bus.close(grace=0)


async def test_a_cancelled_workflow_step_is_dropped_and_the_cancel_is_reported() -> None:
    broker = MemoryBroker()
    bus = memory_bus(broker, "shipping")
    runs: list[str] = []

    @bus.task
    async def ship(parcel: str) -> None:
        runs.append(parcel)

    broker.declare(Topology("reports", (ExchangeSpec(REPORTS_EXCHANGE),), (QueueSpec("reports"),),
                            (Binding(REPORTS_EXCHANGE, "reports", "#"),)))
    await bus.start()
    try:
        cancelled, running = str(uuid.uuid4()), str(uuid.uuid4())
        await bus.cancel(cancelled)
        outcomes = await bus._publish_outcomes([_step(ship, cancelled, "0", parcel="a"),
                                                _step(ship, running, "0", parcel="b")])
        assert outcomes == [None, None]
        await broker.settle()
        assert runs == ["b"]
        assert bus.revoked_dropped == 1
        reports = [orjson.loads(m.body) for m in broker.messages("reports")]
        # The cancel is reported once; the cancelled workflow reports nothing else (its step never ran).
        assert [r for r in reports if r["workflow_id"] == cancelled] == [
            {"workflow_id": cancelled, "cancelled_at": reports[0]["cancelled_at"]}]
        assert [m.routing_key for m in broker.messages("reports")].count(CANCELLED.type) == 1
        # Revoking one step's event id drops that step only.
        await bus.revoke(step_event_id(running, "1"))
        await bus._publish_outcomes([_step(ship, running, "1", parcel="c"), _step(ship, running, "2", parcel="d")])
        await broker.settle()
        assert runs == ["b", "d"]
        assert bus.revoked_dropped == 2
    finally:
        await bus.close(grace=0)


async def test_revocations_expire_on_the_brokers_clock() -> None:
    broker = MemoryBroker()
    store = memory_revocations(broker)
    await store.revoke("x", ttl=10)
    assert await store.revoked("y", "x")
    await broker.clock.advance(11)
    assert not await store.revoked("x")
    with pytest.raises(ConfigurationError):
        await store.revoke("x", ttl=0.5)


async def test_buses_made_in_memory_share_the_brokers_store() -> None:
    broker = MemoryBroker()
    with in_memory(broker):
        bus = EventBus(BusSettings(service="any"))
    try:
        await bus.revoke("e-1")
        assert await memory_revocations(broker).revoked("e-1")
    finally:
        await bus.close(grace=0)


async def test_without_a_store_cancel_and_revoke_say_what_to_set() -> None:
    bus = EventBus(BusSettings(service="nostore"), transport=MemoryBroker().transport())
    try:
        for call in (bus.revoke("e"), bus.cancel("w")):
            with pytest.raises(ConfigurationError, match="EVENTBUS_REVOCATIONS_URL"):
                await call
    finally:
        await bus.close(grace=0)


def test_the_store_url_comes_from_the_environment_and_must_be_redis() -> None:
    settings = BusSettings.from_env("svc", env={"EVENTBUS_REVOCATIONS_URL": "redis://cache:6379/2"})
    assert settings.revocations_url == "redis://cache:6379/2"
    assert BusSettings.from_env("svc", env={}).revocations_url is None
    with pytest.raises(ConfigurationError, match="revocations_url"):
        BusSettings(service="svc", revocations_url="http://cache")


class _FailsOnce:
    """A store of the user's own that fails its first look-up with an error of its own kind."""

    def __init__(self) -> None:
        self.lookups = 0

    async def revoked(self, *ids: str) -> bool:
        self.lookups += 1
        if self.lookups == 1:
            raise TimeoutError("store busy")
        return False

    async def revoke(self, id: str, ttl: float | timedelta = timedelta(days=7)) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        return None


async def test_a_store_that_fails_hands_the_delivery_back_and_it_runs_on_the_next_try() -> None:
    broker = MemoryBroker()
    store = _FailsOnce()
    bus = EventBus(BusSettings(service="flaky"), transport=broker.transport(), revocations=store)
    runs: list[str] = []

    @bus.task
    async def charge(invoice: str) -> None:
        runs.append(invoice)

    await bus.start()
    try:
        await charge.apply_async(kwargs={"invoice": "a"}, countdown=1)
        await broker.clock.advance(2)
        for _ in range(300):
            await broker.settle()
            if runs:
                break
            await asyncio.sleep(0.01)
        assert runs == ["a"] and store.lookups == 2
        assert broker.depth(f"flaky.{charge.type}") == 0 and broker.depth(f"flaky.{charge.type}.dlq") == 0
    finally:
        await bus.close(grace=0)
