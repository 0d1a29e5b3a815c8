"""How the async consumer runs handlers (``_async_consumer.py``): side by side up to the prefetch when
they wait, and without a task per delivery when they do not."""

from __future__ import annotations

import asyncio

import pytest

from eventbus import BusSettings, EventBus, EventContract, SyncEventBus
from eventbus_contracts import REGISTRY, ConversationEndedV1

from ..conftest import RawBroker

pytestmark = pytest.mark.broker

_REAL = REGISTRY.get("chat.conversation.ended.v1")


class PrivateConversationEnded(ConversationEndedV1):
    """The real contract on an exchange of this module's own: no other publisher reaches its queues."""


CONTRACT: EventContract[PrivateConversationEnded] = EventContract(
    type=_REAL.type, exchange="test.consumer-workers", model=PrivateConversationEnded, schema=_REAL.schema,
    resources=_REAL.resources,
)


def _events(count: int) -> list[PrivateConversationEnded]:
    example = _REAL.schema["examples"][0]
    return [CONTRACT.validate_python({**example, "conversation_id": f"conv_w_{n}"}) for n in range(count)]


async def test_waiting_handlers_run_side_by_side_up_to_the_prefetch(settings: BusSettings, raw: RawBroker) -> None:
    bus = EventBus(settings.with_(prefetch=5))
    gate = asyncio.Event()
    running = 0
    most = 0
    handled: list[str] = []

    @bus.subscribe(PrivateConversationEnded)
    async def handle(event: PrivateConversationEnded) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await gate.wait()
        running -= 1
        handled.append(event.conversation_id)

    raw.track(f"{settings.service}.{CONTRACT.type}", f"{settings.service}.{CONTRACT.type}.dlq")
    await bus.start()
    try:
        await bus.publish_many(_events(12))
        for _ in range(200):
            if most >= 5:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # time for a sixth delivery, if the prefetch let one through
        assert (most, running, handled) == (5, 5, [])
        gate.set()
        for _ in range(200):
            if len(handled) == 12:
                break
            await asyncio.sleep(0.02)
        assert sorted(handled) == sorted(f"conv_w_{n}" for n in range(12))
        assert most == 5
    finally:
        await bus.close()
    assert raw.depth(f"{settings.service}.{CONTRACT.type}") == 0  # all acked


async def test_handlers_that_do_not_wait_cost_no_task_per_delivery(settings: BusSettings, raw: RawBroker) -> None:
    bus = EventBus(settings.with_(prefetch=200))
    handled = 0
    most_tasks = 0

    @bus.subscribe(PrivateConversationEnded)
    async def handle(event: PrivateConversationEnded) -> None:
        nonlocal handled, most_tasks
        handled += 1
        most_tasks = max(most_tasks, len(asyncio.all_tasks()))

    queue = f"{settings.service}.{CONTRACT.type}"
    raw.track(queue, queue + ".dlq")
    await bus.start()
    try:
        baseline = len(asyncio.all_tasks())
        # Published from another event loop (the sync bus's own thread), so that only the
        # consumer's tasks are on this loop while it works.
        with SyncEventBus(settings) as publisher:
            await asyncio.to_thread(publisher.publish_many, _events(1000))
        for _ in range(500):
            if handled == 1000:
                break
            await asyncio.sleep(0.02)
        assert handled == 1000
        # A task per delivery would show up to 200 (the prefetch) here; the workers are a handful.
        assert most_tasks - baseline <= 5, (most_tasks, baseline)
    finally:
        await bus.close()
    assert raw.depth(queue) == 0
