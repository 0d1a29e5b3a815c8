"""Workflow steps and request-reply across Python and the Node runtime, on the real broker.

The Node side is ``harness/workflows/workflows_cli.ts`` built on the workflow demo's generated package
(examples/workflows/generated/typescript): it runs the demo's Node steps (notify → a record result,
square → a squared result, failing on purpose when asked). Python makes the step messages with the
SDK's own slip code (``workflows._slip.advance`` + ``_forward.step_messages``), reads what Node
forwards and reports with the SDK's report models, and requests / answers with ``EventBus.request``.
Each test runs in a private vhost; the Redis keys of the revocation test are unique and deleted.

Proven: (a) a notify step forwarded to the next (Python) step with the deterministic id, body,
headers and slip, and its step_completed report; (b) a group member's report carries its join;
(c) a bad slip and a result that does not fit are parked with their reasons and reported failed, an
always-failing step is reported and its on_error step published; (d) request-reply both ways, remote
errors, timeouts (no queue left behind) and a downed responder; (e) a revoked step dropped, an
unreachable revocation store that drops nothing, and the single-active-consumer queue declared exactly
as Python declares it; and a chain started by Python that runs Python → Go → Node → Python.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest

from eventbus import BusSettings, EventBus, RemoteTaskError, RequestTimeoutError, RetryPolicy
from eventbus._topology import queue_specs
from eventbus.workflows._forward import step_messages
from eventbus.workflows._reports import StepCompleted, WorkflowFailed
from eventbus.workflows._slip import JoinFrame, StepFrame, advance, report_id, step_event_id
from tests._vhosts import amqp_url, private_vhost, vhost_queues
from tests.toolchain.builds import link_node_modules, tsc
from tests.toolchain.harnesses import HARNESS as HARNESSES
from tests.toolchain.harnesses import build_go_harness

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "workflows" / "generated" / "python"))

from wfdemo_contracts import (  # noqa: E402
    REGISTRY,
    NotifyV1,
    PrepareV1,
    RecordV1,
    ScoreV1,
    SquaredV1,
    SquareV1,
)

pytestmark = [pytest.mark.broker, pytest.mark.conformance]

SERVICE = "wfnode"
NOTIFY, RECORD = "tasks.wfdemo.notify.v1", "tasks.wfdemo.record.v1"
SQUARE, TOTAL, CLEANUP = "tasks.wfdemo.square.v1", "tasks.wfdemo.total.v1", "tasks.wfdemo.cleanup.v1"
HARNESS = Path(__file__).resolve().parent / "harness" / "workflows"


def _frame(step: str, event_type: str, args: dict[str, Any] | None = None, mode: str = "none",
           field: str | None = None) -> StepFrame:
    return StepFrame(step, event_type, "tasks", event_type, args or {}, mode, field)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def node_cli(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    build = tmp_path_factory.mktemp("node-wf")
    shutil.copytree(ROOT / "examples" / "workflows" / "generated" / "typescript", build / "pkg",
                    ignore=shutil.ignore_patterns("node_modules", "dist"))
    shutil.copytree(HARNESS, build / "harness")
    (build / "package.json").write_text('{"private": true, "type": "module"}\n', encoding="utf-8")
    link_node_modules(build)
    tsc(build / "harness")
    return ["node", str(build / "dist" / "harness" / "workflows_cli.js")]


@pytest.fixture
def vhost() -> Iterator[str]:
    with private_vhost("wf-node") as name:
        yield name


class NodeWorker:
    """The Node worker process; its stderr is collected (it says "ready" once it consumes)."""

    def __init__(self, cli: list[str], vhost: str, *extra: str) -> None:
        self.process = subprocess.Popen([*cli, "worker", amqp_url(vhost), SERVICE, *extra],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(60):
            self.stop()
            raise AssertionError("the Node worker did not start:\n" + "\n".join(self.lines))

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip())
            if line.strip() == "ready":
                self._ready.set()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Broker:
    """A blocking pika connection in the vhost: probe queues, publishing raw steps, reading queues."""

    def __init__(self, vhost: str) -> None:
        self.vhost = vhost
        self.connection = pika.BlockingConnection(pika.URLParameters(amqp_url(vhost)))
        self.channel = self.connection.channel()
        for exchange in ("tasks", "eventbus.workflow"):
            self.channel.exchange_declare(exchange, "topic", durable=True)

    def probe(self, name: str, exchange: str, key: str) -> str:
        self.channel.queue_declare(name, durable=True)
        self.channel.queue_bind(name, exchange, key)
        return name

    def publish(self, message: Any) -> None:
        properties = pika.BasicProperties(content_type=message.content_type, delivery_mode=2,
                                          message_id=message.message_id, type=message.event_type,
                                          app_id=message.app_id, headers=dict(message.headers))
        self.channel.basic_publish(message.exchange, message.routing_key, message.body, properties)

    def take(self, queue: str, count: int = 1, timeout: float = 30) -> list[tuple[Any, bytes]]:
        found: list[tuple[Any, bytes]] = []
        deadline = time.monotonic() + timeout
        while len(found) < count and time.monotonic() < deadline:
            method, properties, body = self.channel.basic_get(queue, auto_ack=True)
            if method is None:
                self.connection.sleep(0.05)
                continue
            found.append((properties, body))
        assert len(found) == count, f"{queue}: {len(found)} of {count} messages within {timeout}s"
        return found

    def empty(self, queue: str) -> bool:
        """Nothing ready in ``queue`` (ask once its consumers are gone: then nothing is unacked either)."""
        method, _, _ = self.channel.basic_get(queue, auto_ack=False)
        if method is not None:
            self.channel.basic_nack(method.delivery_tag, requeue=True)
        return method is None

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()


@pytest.fixture
def broker(vhost: str) -> Iterator[Broker]:
    client = Broker(vhost)
    yield client
    client.close()


def _step(workflow_id: str, frames: list[Any], x: Any = None, on_error: tuple[Any, ...] = ()) -> Any:
    messages, _ = step_messages(advance(frames, x, on_error), workflow_id=workflow_id, contracts=REGISTRY.get,
                                source="/tests/python")
    (message,) = messages
    return message


def _report(broker: Broker, queue: str) -> tuple[Any, dict[str, Any]]:
    ((properties, body),) = broker.take(queue)
    return properties, json.loads(body)


# -- (a) (b) (c): workflow steps ---------------------------------------------------------------------


def test_a_node_step_forwards_to_the_python_step_and_reports(node_cli: list[str], vhost: str, broker: Broker) -> None:
    reports = broker.probe("probe.reports", "eventbus.workflow", "#")
    records = broker.probe("probe.record", "tasks", RECORD)
    worker = NodeWorker(node_cli, vhost)
    try:
        wf = str(uuid.uuid4())
        record = _frame("2", RECORD, mode="merge")
        broker.publish(_step(wf, [_frame("1", NOTIFY, {"user_id": "u1", "points": 42, "trail": ["python", "go"]}),
                                  record]))
        ((properties, body),) = broker.take(records)
        assert properties.message_id == step_event_id(wf, "2")
        assert properties.headers["cloudEvents_id"] == step_event_id(wf, "2")
        assert properties.headers["cloudEvents_type"] == RECORD
        assert properties.headers["eventbus-workflow-id"] == wf
        assert properties.headers["eventbus-workflow-step"] == "2"
        assert json.loads(properties.headers["eventbus-workflow-slip"]) == {"v": 1, "next": []}
        assert json.loads(body) == {"user_id": "u1", "points": 42, "message": "u1 has 42 points",
                                    "trail": ["python", "go", "node"]}
        REGISTRY.get(RECORD).decode(body)  # what the Python record step will accept
        report_properties, data = _report(broker, reports)
        assert report_properties.message_id == report_id(wf, "1", "completed")
        assert report_properties.headers["cloudEvents_type"] == "eventbus.workflow.step_completed.v1"
        completed = StepCompleted.model_validate(data)
        assert (completed.workflow_id, completed.step, completed.type, completed.attempt) == (wf, "1", NOTIFY, 1)
        assert completed.result_type == RECORD and completed.join is None
        assert completed.finished_at >= completed.started_at

        # a branch's last step: its result moves nothing on, and it is reported
        wf = str(uuid.uuid4())
        broker.publish(_step(wf, [_frame("9", NOTIFY, {"user_id": "u2", "points": 1, "trail": []})]))
        _, data = _report(broker, reports)
        assert (data["workflow_id"], data["step"], data["result_type"], data["join"]) == (wf, "9", RECORD, None)
        worker.stop()
        assert broker.empty(records)
    finally:
        worker.stop()


def test_a_group_member_reports_its_join(node_cli: list[str], vhost: str, broker: Broker) -> None:
    reports = broker.probe("probe.reports", "eventbus.workflow", "#")
    worker = NodeWorker(node_cli, vhost)
    try:
        wf = str(uuid.uuid4())
        total = _frame("cb", TOTAL, mode="field", field="results")
        message = _step(wf, [_frame("0.1", SQUARE, {"n": 4}), JoinFrame("0", 1, 3), total])
        broker.publish(message)
        _, data = _report(broker, reports)
        completed = StepCompleted.model_validate(data)
        assert completed.step == "0.1" and completed.result_type == "tasks.wfdemo.squared.v1"
        assert completed.join is not None
        assert (completed.join.group, completed.join.index, completed.join.size) == ("0", 1, 3)
        assert completed.join.result == {"n": 4, "square": 16}
        assert completed.join.next == [{"step": "cb", "type": TOTAL, "exchange": "tasks", "routing_key": TOTAL,
                                        "args": {}, "input": "field", "field": "results"}]
    finally:
        worker.stop()


def test_bad_slips_bad_results_and_failing_steps_are_parked_and_reported(
        node_cli: list[str], vhost: str, broker: Broker) -> None:
    reports = broker.probe("probe.reports", "eventbus.workflow", "#")
    cleanups = broker.probe("probe.cleanup", "tasks", CLEANUP)
    totals = broker.probe("probe.total", "tasks", TOTAL)
    dlq = f"{SERVICE}.{SQUARE}.dlq"
    worker = NodeWorker(node_cli, vhost)
    try:
        # a slip of another version: parked invalid_slip before the handler runs, reported failed
        wf = str(uuid.uuid4())
        bad = _step(wf, [_frame("1", SQUARE, {"n": 2})])
        broker.publish(dataclasses.replace(bad, headers={**bad.headers, "eventbus-workflow-slip": '{"v":2,"next":[]}'}))
        ((parked, _),) = broker.take(dlq)
        assert parked.headers["eventbus-park-reason"] == "invalid_slip"
        assert parked.headers["eventbus-workflow-id"] == wf
        _, data = _report(broker, reports)
        failed = WorkflowFailed.model_validate(data)
        assert (failed.workflow_id, failed.step, failed.reason, failed.queue) == (wf, "1", "invalid_slip", dlq)
        assert failed.message_id == step_event_id(wf, "1") and failed.type == SQUARE

        # a step without its workflow id: invalid_slip, reported with Python's "unknown"
        broker.publish(dataclasses.replace(bad, headers={k: v for k, v in bad.headers.items()
                                                         if k != "eventbus-workflow-id"}))
        ((parked, _),) = broker.take(dlq)
        assert parked.headers["eventbus-park-reason"] == "invalid_slip"
        _, data = _report(broker, reports)
        failed = WorkflowFailed.model_validate(data)
        assert (failed.workflow_id, failed.step, failed.reason) == ("unknown", "1", "invalid_slip")
        assert failed.error == "a workflow step without eventbus-workflow-id"

        # a result that does not fit the next step (a record merged into a square): workflow_result_invalid
        wf = str(uuid.uuid4())
        broker.publish(_step(wf, [_frame("1", NOTIFY, {"user_id": "u", "points": 1, "trail": []}),
                                  _frame("2", SQUARE, mode="merge")]))
        ((parked, _),) = broker.take(f"{SERVICE}.{NOTIFY}.dlq")
        assert parked.headers["eventbus-park-reason"] == "workflow_result_invalid"
        _, data = _report(broker, reports)
        assert WorkflowFailed.model_validate(data).reason == "workflow_result_invalid"

        # a step that fails its only attempt: failed report and the on_error step, with the failure as input
        wf = str(uuid.uuid4())
        cleanup = _frame("err", CLEANUP, mode="field", field="failure")
        broker.publish(_step(wf, [_frame("1", SQUARE, {"n": 3, "fail": True}), _frame("2", TOTAL, mode="merge")],
                             on_error=(cleanup,)))
        ((parked, _),) = broker.take(dlq)
        assert parked.headers["eventbus-park-reason"] == "handler_error"
        _, data = _report(broker, reports)
        failed = WorkflowFailed.model_validate(data)
        assert (failed.reason, failed.error_type, failed.queue) == ("handler_error", "Error", dlq)
        assert "square 3 failed on purpose" in failed.error
        ((properties, body),) = broker.take(cleanups)
        assert properties.message_id == step_event_id(wf, "err")
        assert json.loads(body) == {"failure": data}
        assert json.loads(properties.headers["eventbus-workflow-slip"]) == {"v": 1, "next": []}
        assert broker.empty(totals)  # the next step was never published
    finally:
        worker.stop()


# -- (d): request-reply ------------------------------------------------------------------------------


def _settings(vhost: str, service: str) -> BusSettings:
    return BusSettings(urls=(amqp_url(vhost),), service=service, handler_timeout=10, shutdown_grace=2)


async def test_python_requests_node(node_cli: list[str], vhost: str) -> None:
    worker = await asyncio.to_thread(NodeWorker, node_cli, vhost)
    try:
        async with EventBus(_settings(vhost, "pycaller")) as caller:
            answer = await caller.request(SquareV1(n=7), reply=SquaredV1, timeout=15)
            assert isinstance(answer, SquaredV1) and (answer.n, answer.square) == (7, 49)
            with pytest.raises(RemoteTaskError) as raised:
                await caller.request(SquareV1(n=5, fail=True), reply=SquaredV1, timeout=15)
            assert raised.value.remote_type == "Error"
            assert raised.value.remote_message == "square 5 failed on purpose"
            before = await asyncio.to_thread(vhost_queues, vhost)
            await asyncio.to_thread(worker.stop)  # the responder goes down: its queue stays, nobody consumes
            with pytest.raises(RequestTimeoutError):
                await caller.request(SquareV1(n=8), reply=SquaredV1, timeout=1)
            assert await asyncio.to_thread(vhost_queues, vhost) == before
    finally:
        worker.stop()


def _node_request(cli: list[str], vhost: str, data: dict[str, Any], timeout_ms: int) -> dict[str, Any]:
    out = subprocess.run([*cli, "request", amqp_url(vhost), SQUARE, json.dumps(data), "tasks.wfdemo.squared.v1",
                          str(timeout_ms)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


async def test_node_requests_python(node_cli: list[str], vhost: str) -> None:
    responder = EventBus(_settings(vhost, "pyresp"))

    @responder.subscribe(SquareV1, retry=RetryPolicy.never())
    async def square(task: SquareV1) -> SquaredV1:
        if task.fail:
            raise ValueError(f"no square of {task.n} today")
        return SquaredV1(n=task.n, square=task.n * task.n)

    async with responder:
        await responder.start()
        assert await asyncio.to_thread(_node_request, node_cli, vhost, {"n": 9}, 15_000) == {
            "ok": True, "data": {"n": 9, "square": 81}}
        assert await asyncio.to_thread(_node_request, node_cli, vhost, {"n": 2, "fail": True}, 15_000) == {
            "error": "RemoteTaskError", "remoteType": "builtins.ValueError", "remoteMessage": "no square of 2 today"}
    # the responder is down; its queue is still bound, so the request is routed and waits unanswered
    before = await asyncio.to_thread(vhost_queues, vhost)
    answer = await asyncio.to_thread(_node_request, node_cli, vhost, {"n": 3}, 700)
    assert answer["error"] == "RequestTimeoutError"
    assert await asyncio.to_thread(vhost_queues, vhost) == before  # no reply queue was left behind


# -- a chain across the three languages ------------------------------------------------------------


@pytest.mark.polyglot
async def test_a_chain_runs_python_then_go_then_node_then_python(
        node_cli: list[str], vhost: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Started by Python's ``bus.start(chain(...))``; each runtime forwards the slip by itself."""
    from eventbus.workflows import chain, step

    go_cli = build_go_harness(ROOT / "examples" / "workflows" / "generated" / "go", tmp_path_factory.mktemp("go-wf"),
                              HARNESSES / "go-workflows")
    records: list[RecordV1] = []
    bus = EventBus(_settings(vhost, "wfpy"))

    @bus.subscribe(PrepareV1)
    async def prepare(task: PrepareV1) -> ScoreV1:
        return ScoreV1(user_id=task.user_id, trail=[*(task.trail or []), "py"])

    @bus.subscribe(RecordV1)
    async def record(event: RecordV1) -> None:
        records.append(event)

    node = await asyncio.to_thread(NodeWorker, node_cli, vhost)
    go = subprocess.Popen([*go_cli, "serve", "--url", amqp_url(vhost), "--service", "wfgo"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert go.stderr is not None
        while '"ready":true' not in (line := await asyncio.to_thread(go.stderr.readline)):
            assert line, "the Go harness stopped before it was ready"
        threading.Thread(target=go.stderr.read, daemon=True).start()  # keep its log pipe drained
        async with bus:
            await bus.start()
            await bus.start(chain(
                step(PrepareV1, {"user_id": "ada"}, returns=ScoreV1),
                step(ScoreV1, returns=NotifyV1),
                step(NotifyV1, returns=RecordV1),
                step(RecordV1),
            ))
            deadline = time.monotonic() + 30
            while not records and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
    finally:
        node.stop()
        go.terminate()
        go.wait(15)
    assert len(records) == 1
    assert records[0].trail == ["py", "go", "node"]
    assert records[0].user_id == "ada" and records[0].points == 3  # Go scores len(user_id)
    assert records[0].message == "ada has 3 points"  # worded by the Node step


# -- (e): revocation and single active consumer -------------------------------------------------------


def test_a_revoked_step_is_dropped_by_node(node_cli: list[str], vhost: str, broker: Broker) -> None:
    redis = pytest.importorskip("redis")
    store = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    reports = broker.probe("probe.reports", "eventbus.workflow", "#")
    records = broker.probe("probe.record", "tasks", RECORD)
    revoked, live = str(uuid.uuid4()), str(uuid.uuid4())
    store.set(f"eventbus:revoked:{revoked}", "2026-01-01T00:00:00Z", ex=600)
    worker = NodeWorker(node_cli, vhost, "--revocations", "redis://127.0.0.1:6379/0")
    try:
        notify = {"user_id": "u", "points": 1, "trail": []}
        broker.publish(_step(revoked, [_frame("1", NOTIFY, notify), _frame("2", RECORD, mode="merge")]))
        broker.publish(_step(live, [_frame("1", NOTIFY, notify), _frame("2", RECORD, mode="merge")]))
        ((properties, _),) = broker.take(records)
        assert properties.headers["eventbus-workflow-id"] == live
        _, data = _report(broker, reports)
        assert data["workflow_id"] == live
        deadline = time.monotonic() + 30
        while not any("dropping a revoked delivery" in line for line in worker.lines) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert any("dropping a revoked delivery" in line and revoked in line for line in worker.lines)
        worker.stop()  # graceful: whatever it settled is acked; the rest would go back to the queue
        assert broker.empty(f"{SERVICE}.{NOTIFY}")  # the revoked step was acked and dropped
        assert broker.empty(records) and broker.empty(reports)  # it forwarded and reported nothing
        assert broker.empty(f"{SERVICE}.{NOTIFY}.dlq")
    finally:
        worker.stop()
        store.delete(f"eventbus:revoked:{revoked}")
        store.close()


def test_single_active_consumer_queue_is_declared_as_python_declares_it(
        node_cli: list[str], vhost: str, broker: Broker) -> None:
    worker = NodeWorker(node_cli, vhost, "--single-active")
    try:
        queue = f"{SERVICE}.{SQUARE}"
        main, _ = queue_specs(queue, "quorum", 20, single_active_consumer=True)
        assert main.arguments["x-single-active-consumer"] is True
        broker.channel.queue_declare(queue, durable=True, arguments=dict(main.arguments))  # equivalent: accepted
        plain, _ = queue_specs(queue, "quorum", 20)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            broker.channel.queue_declare(queue, durable=True, arguments=dict(plain.arguments))
        assert refused.value.reply_code == 406 and "x-single-active-consumer" in refused.value.reply_text
    finally:
        worker.stop()


def test_an_unreachable_revocation_store_hands_steps_back_and_drops_nothing(
        node_cli: list[str], vhost: str, broker: Broker) -> None:
    records = broker.probe("probe.record", "tasks", RECORD)
    worker = NodeWorker(node_cli, vhost, "--revocations", "redis://127.0.0.1:1/0")  # nothing listens there
    try:
        wf = str(uuid.uuid4())
        broker.publish(_step(wf, [_frame("1", NOTIFY, {"user_id": "u", "points": 1, "trail": []}),
                                  _frame("2", RECORD, mode="merge")]))
        deadline = time.monotonic() + 30
        while sum("handing the delivery back" in line for line in worker.lines) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sum("cannot ask the revocation store" in line for line in worker.lines) >= 2  # nacked, redelivered
        worker.stop()
        ((properties, _),) = broker.take(f"{SERVICE}.{NOTIFY}")  # still there: never dropped
        assert properties.headers["eventbus-workflow-id"] == wf
        assert broker.empty(f"{SERVICE}.{NOTIFY}.dlq") and broker.empty(records)  # and never run
    finally:
        worker.stop()
