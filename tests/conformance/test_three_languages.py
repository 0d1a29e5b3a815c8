"""Python, Node and Go replicas of one service on the real broker, all three at once.

The pairwise suites (``test_runtime_node.py``, ``test_runtime_go.py``) prove each runtime against
the Python SDK; this file proves the promise they add up to: one queue shared by a Python, a Node
and a Go consumer (every event handled exactly once among them), one vhost in which all three
declare the same service's topology in any order without a mismatch, and a delayed event
published in each language that reaches the two others, never early. The Node and Go sides are
the harnesses' ``worker`` and ``publish`` modes, which share one command line.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from eventbus import EventContext

from .test_runtime_node import (
    CONTRACT,
    DATA,
    EVENT,
    Node,
    published_ids,
    python_bus,
    python_publishes,
    until,
    vhost,  # noqa: F401  (the private-vhost fixture)
    worker,
)

pytestmark = [pytest.mark.broker, pytest.mark.conformance]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _harness_publish(harness: list[str], url: str, tmp_path: Path, count: int, delay_ms: int) -> tuple[int, list[str]]:
    data = tmp_path / "event.json"
    data.write_text(json.dumps(DATA), encoding="utf-8")
    publisher = Node(harness, "publish", "--url", url, "--service", "publisher", "--event", EVENT,
                     "--data-file", str(data), "--count", str(count), "--delay-ms", str(delay_ms))
    assert publisher.wait(120) == 0, publisher.errors
    return published_ids(publisher)


def _handled_by(process: Node) -> list[str]:
    return [call["id"] for call in process.calls() if call.get("ok")]


async def test_a_python_a_node_and_a_go_consumer_share_one_queue(
    vhost: str, node_harness: list[str], go_harness: list[str]  # noqa: F811
) -> None:
    service, count = "shared-by-three", 300
    python_seen: list[str] = []

    async def handle(event: Any, context: EventContext) -> None:
        await asyncio.sleep(0.005)  # as slow as the harnesses' handlers, so that no one takes all
        python_seen.append(context.id)

    bus = python_bus(vhost, service, prefetch=10)
    bus.subscribe(CONTRACT.model)(handle)
    await bus.start()
    slow = ("--prefetch", "10", "--handler-ms", "5")
    node = worker(node_harness, vhost, service, count=count, extra=slow)
    go = worker(go_harness, vhost, service, count=count, extra=slow)
    try:
        ids = await python_publishes(vhost, count)
        everyone = lambda: set(python_seen) | set(_handled_by(node)) | set(_handled_by(go))  # noqa: E731
        assert await until(lambda: everyone() >= set(ids), timeout=90), len(everyone())
    finally:
        node.stop()
        go.stop()
        await bus.close()
    assert node.wait() == 0, node.errors
    assert go.wait() == 0, go.errors
    by_language = {"python": python_seen, "node": _handled_by(node), "go": _handled_by(go)}
    print("one queue, three languages:", {name: len(seen) for name, seen in by_language.items()})
    handled = [event_id for seen in by_language.values() for event_id in seen]
    assert sorted(handled) == sorted(ids)  # every event once, none twice, none lost
    assert all(by_language.values()), {name: len(seen) for name, seen in by_language.items()}  # all three took some


async def test_all_three_declare_one_service_in_one_vhost_in_any_order(
    vhost: str, node_harness: list[str], go_harness: list[str]  # noqa: F811
) -> None:
    """Go first, then Node, then Python, then Go again: the same queue, DLQ, bindings and delay
    topology (v2) each time, so no declaration is refused with PRECONDITION_FAILED."""
    service = "declared-by-three"
    for harness in (go_harness, node_harness):
        process = worker(harness, vhost, service, count=1)
        process.stop()
        assert process.wait() == 0, process.errors
    bus = python_bus(vhost, service)
    bus.subscribe(CONTRACT.model)(lambda event: None)
    await bus.start()
    await bus.close()
    process = worker(go_harness, vhost, service, count=1)
    process.stop()
    assert process.wait() == 0, process.errors


@pytest.mark.parametrize("sender", ["python", "node", "go"])
async def test_a_delayed_event_from_each_language_reaches_the_two_others_not_before_its_delay(
    sender: str, vhost: str, node_harness: list[str], go_harness: list[str], tmp_path: Path  # noqa: F811
) -> None:
    delay_ms, count = 1500, 3
    harnesses = {"node": node_harness, "go": go_harness}
    receivers = {name: worker(harness, vhost, f"delay-to-{name}", count=count)
                 for name, harness in harnesses.items() if name != sender}
    python_arrivals: dict[str, int] = {}
    bus = None
    if sender != "python":
        async def record(event: Any, context: EventContext) -> None:
            python_arrivals[context.id] = _now_ms()

        bus = python_bus(vhost, "delay-to-python")
        bus.subscribe(CONTRACT.model)(record)
        await bus.start()
    try:
        if sender == "python":
            sent_at = _now_ms()
            ids = await python_publishes(vhost, count, delay=delay_ms / 1000)
        else:
            sent_at, ids = _harness_publish(harnesses[sender], vhost, tmp_path, count, delay_ms)
        for name, receiver in receivers.items():
            assert receiver.wait(90) == 0, (name, receiver.errors)
            calls = [c for c in receiver.calls() if c.get("ok")]
            assert sorted(c["id"] for c in calls) == sorted(ids), name
            assert all(c["at_ms"] >= sent_at + delay_ms for c in calls), (name, calls, sent_at)  # never early
        if bus is not None:
            assert await until(lambda: set(python_arrivals) >= set(ids), timeout=60)
            assert sorted(python_arrivals) == sorted(ids)
            assert all(at >= sent_at + delay_ms for at in python_arrivals.values()), python_arrivals
    finally:
        for receiver in receivers.values():
            receiver.stop()
        if bus is not None:
            await bus.close()
