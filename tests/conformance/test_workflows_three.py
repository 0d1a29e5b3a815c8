"""Python, Go and Node in one workflow and in each other's requests, on the real broker.

- A chord whose members run in Go AND Node (both serve ``tasks.wfdemo.square.v1`` from their own
  queues, so every member runs twice, once per language, and is reported twice): Python's engine
  counts each member once and the Python callback runs once, with every result in group order.
- Request-reply Node → Go and Go → Node: a typed result, the remote error, and a timeout once the
  responder is down, with no queue left behind.

The Python → Go → Node → Python chain is in test_workflows_node.py; each runtime's own cases, and the
harness processes used here, are in test_workflows_go.py and test_workflows_node.py.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eventbus import BusSettings, EventBus
from eventbus.workflow_engine import WorkflowEngine, Workflows
from tests._databases import REDIS_URL
from tests._vhosts import amqp_url, private_vhost, vhost_queues
from tests.conformance.test_workflows_go import Go, wf_harness  # noqa: F401 (a fixture)
from tests.conformance.test_workflows_node import NodeWorker, node_cli  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parents[2]
from wfdemo_contracts import SquaredV1, SquareV1, TotalV1  # noqa: E402 (test_workflows_node puts it on the path)

pytestmark = [pytest.mark.broker, pytest.mark.conformance, pytest.mark.polyglot]


@pytest.fixture
def vhost() -> Iterator[str]:
    with private_vhost("wf-three") as name:
        yield name


def _go(harness: list[str], vhost: str) -> Go:
    """The Go harness serving the demo's Go steps (test_workflows_go's), ready once it consumes."""
    return Go([*harness, "serve", "--url", amqp_url(vhost), "--service", "wfgo"])


async def test_a_chord_with_members_in_go_and_node_is_joined_once_by_python(
        node_cli: list[str], wf_harness: list[str], vhost: str, redis_prefix: str) -> None:  # noqa: F811
    from eventbus.workflows import chord, step

    size = 200
    totals: list[TotalV1] = []
    bus = EventBus(BusSettings(urls=(amqp_url(vhost),), service="wfpy", handler_timeout=10, shutdown_grace=2))
    engine = WorkflowEngine(bus, REDIS_URL, prefix=redis_prefix)

    @bus.subscribe(TotalV1)
    async def total(event: TotalV1) -> None:
        totals.append(event)

    node = await asyncio.to_thread(NodeWorker, node_cli, vhost)
    go = await asyncio.to_thread(_go, wf_harness, vhost)
    try:
        async with bus:
            await bus.start()
            workflow_id = await bus.start(chord(
                [step(SquareV1, {"n": n}, returns=SquaredV1) for n in range(size)], step(TotalV1)))
            deadline = time.monotonic() + 60
            while not totals and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # a second callback, if there were one, would come now
            workflow = await Workflows(REDIS_URL, prefix=redis_prefix).show(workflow_id)
    finally:
        node.stop()
        go.stop()
    assert len(totals) == 1, f"{len(totals)} callbacks"
    assert [(r.n, r.square) for r in totals[0].results] == [(n, n * n) for n in range(size)]
    assert engine.fired == 1
    assert workflow is not None and workflow.state == "completed"


def _node_request(cli: list[str], vhost: str, n: int, timeout_ms: int, fail: bool = False) -> dict[str, Any]:
    data = json.dumps({"n": n, **({"fail": True} if fail else {})})
    out = subprocess.run([*cli, "request", amqp_url(vhost), "tasks.wfdemo.square.v1", data, "tasks.wfdemo.squared.v1",
                          str(timeout_ms)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _go_request(cli: list[str], vhost: str, n: int, timeout_ms: int, fail: bool = False) -> dict[str, Any]:
    out = subprocess.run([*cli, "request", "--url", amqp_url(vhost), "--n", str(n), "--timeout-ms", str(timeout_ms),
                          *(["--fail"] if fail else [])], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_node_asks_go_and_go_asks_node(node_cli: list[str], wf_harness: list[str], vhost: str) -> None:  # noqa: F811
    go = _go(wf_harness, vhost)
    try:
        assert _node_request(node_cli, vhost, 7, 10_000) == {"ok": True, "data": {"n": 7, "square": 49}}
        failed = _node_request(node_cli, vhost, 5, 10_000, fail=True)
        assert failed["error"] == "RemoteTaskError" and "failed on purpose" in failed["remoteMessage"]
    finally:
        go.stop()
    down = _node_request(node_cli, vhost, 7, 1_500)  # Go's queue is there, nobody consumes it
    assert down["error"] == "RequestTimeoutError"

    node = NodeWorker(node_cli, vhost)
    try:
        assert _go_request(wf_harness, vhost, 9, 10_000) == {"n": 9, "square": 81}
        failed = _go_request(wf_harness, vhost, 4, 10_000, fail=True)
        assert failed["error"] == "remote" and failed["remote_type"] == "Error"
        assert "failed on purpose" in failed["remote_message"]
    finally:
        node.stop()
    # both consumers are gone now: the requests go to two queues nobody reads
    assert _go_request(wf_harness, vhost, 9, 1_500) == {"error": "timeout"}
    # no reply queue anywhere: only the two services' queues and the delay machinery
    leftovers = [q for q in vhost_queues(vhost) if not q.startswith(("wfgo.", "wfnode.", "eventbus.delay"))]
    assert leftovers == []
