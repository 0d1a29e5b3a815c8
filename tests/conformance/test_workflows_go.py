"""Go workflow steps and request-reply beside Python on the real broker, each test in a private vhost.

The Go side is ``tests/conformance/harness/go-workflows``, built on the workflow demo's committed
bindings (examples/workflows/generated/go): it serves ``tasks.wfdemo.score.v1`` (its result is the
notify command) and ``tasks.wfdemo.square.v1`` (its result is a squared result; it fails when asked),
and makes requests. Python builds the step messages with its own codec (``workflows._forward``) and
checks what Go forwards and reports with its own models, so both runtimes agree on the wire:

- a chain step run by Go forwards the next step (deterministic id, body, headers, slip) and sends the
  step_completed report; a chord member's report carries its join;
- a bad slip is parked ``invalid_slip``, a result that does not fit the next step
  ``workflow_result_invalid``, a failing step handler_error: each with the failed report, and the
  on_error step published beside it;
- request-reply Python → Go and Go → Python, with the typed result, the remote error, a timeout with
  no responder and with a downed one, and no queue left behind;
- a revoked workflow's step is dropped by Go; ``SingleActiveConsumer`` declares Python's queue;
- a chain started by Python's ``bus.start`` runs Python → Go → Python → Python through the slip alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
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
import pytest
import redis

from eventbus import (
    BusSettings,
    EventBus,
    RemoteTaskError,
    RequestTimeoutError,
    RetryPolicy,
    TopologyMismatchError,
)
from eventbus.workflows._forward import step_messages
from eventbus.workflows._reports import StepCompleted, WorkflowFailed
from eventbus.workflows._slip import (
    GroupFrame,
    StepFrame,
    advance,
    frame_to_json,
    parse_slip,
    report_id,
    step_event_id,
)
from tests._databases import REDIS_URL
from tests._vhosts import amqp_url, private_vhost, vhost_queues
from tests.toolchain.harnesses import HARNESS, build_go_harness

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "workflows"
sys.path.insert(0, str(DEMO / "generated" / "python"))
import wfdemo_contracts as demo  # noqa: E402

pytestmark = [pytest.mark.broker, pytest.mark.conformance, pytest.mark.polyglot]

SERVICE = "wfgo"
SCORE, NOTIFY, SQUARE, SQUARED = (demo.WFDEMO_SCORE_V1, demo.WFDEMO_NOTIFY_V1, demo.WFDEMO_SQUARE_V1,
                                  demo.WFDEMO_SQUARED_V1)
TOTAL, CLEANUP = demo.WFDEMO_TOTAL_V1, demo.WFDEMO_CLEANUP_V1
CONTRACTS = {c.type: c for c in (SCORE, NOTIFY, SQUARE, SQUARED, TOTAL, CLEANUP, demo.WFDEMO_PREPARE_V1,
                                 demo.WFDEMO_RECORD_V1)}


def _step(step: str, contract: Any, args: dict[str, Any] | None = None, mode: str = "none",
          field: str | None = None) -> StepFrame:
    return StepFrame(step, contract.type, contract.exchange, contract.routing_key, args or {}, mode, field)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def wf_harness(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return build_go_harness(DEMO / "generated" / "go", tmp_path_factory.mktemp("go-wf-harness"),
                            HARNESS / "go-workflows")


@pytest.fixture
def vhost() -> Iterator[str]:
    with private_vhost("wf-go") as name:
        yield name


class Go:
    """A harness process in ``serve`` mode, ready once it consumes both queues."""

    def __init__(self, args: list[str]) -> None:
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stderr: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(60):
            self.stop()
            raise AssertionError(f"the Go harness did not start: {''.join(self.stderr)}")

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)
            if '"ready":true' in line:
                self.ready.set()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@contextlib.contextmanager
def serving(harness: list[str], vhost: str, *extra: str) -> Iterator[Go]:
    go = Go([*harness, "serve", "--url", amqp_url(vhost), "--service", SERVICE, *extra])
    try:
        yield go
    finally:
        go.stop()


class Probe:
    """An exclusive queue bound to the reports and to the given step routing keys on ``tasks``."""

    def __init__(self, vhost: str, keys: list[str]) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(amqp_url(vhost)))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        for exchange in ("eventbus.workflow", "tasks"):
            self.channel.exchange_declare(exchange, "topic", durable=True)
        self.queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.queue_bind(self.queue, "eventbus.workflow", "#")
        for key in keys:
            self.channel.queue_bind(self.queue, "tasks", key)

    def publish(self, message: Any, headers: dict[str, Any] | None = None) -> None:
        properties = pika.BasicProperties(content_type=message.content_type, delivery_mode=2,
                                          message_id=message.message_id, type=message.event_type,
                                          headers={**message.headers, **(headers or {})})
        self.channel.basic_publish(message.exchange, message.routing_key, message.body, properties, mandatory=True)

    def take(self, count: int, timeout: float = 30) -> list[tuple[str, pika.BasicProperties, dict[str, Any]]]:
        """``count`` messages: (routing key, properties, JSON body or {})."""
        got: list[tuple[str, pika.BasicProperties, dict[str, Any]]] = []
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            method, properties, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                self.connection.sleep(0.05)
                continue
            got.append((method.routing_key, properties, json.loads(body) if body else {}))
        assert len(got) == count, f"{len(got)} of {count} messages arrived: {got}"
        return got

    def dead_letters(self, queue: str, count: int, timeout: float = 30) -> list[pika.BasicProperties]:
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            method, properties, _ = self.channel.basic_get(queue, auto_ack=True)
            if method is None:
                self.connection.sleep(0.05)
                continue
            got.append(properties)
        assert len(got) == count, f"{len(got)} of {count} parked messages in {queue}"
        return got

    def depth(self, queue: str) -> int:
        return self.channel.queue_declare(queue, passive=True).method.message_count

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.close()


@contextlib.contextmanager
def probe(vhost: str, keys: list[str]) -> Iterator[Probe]:
    p = Probe(vhost, keys)
    try:
        yield p
    finally:
        p.close()


def _messages(frames: list[Any], x: Any, workflow_id: str, on_error: tuple[Any, ...] = ()) -> list[Any]:
    messages, _ = step_messages(advance(frames, x, on_error), workflow_id=workflow_id, contracts=CONTRACTS.get,
                                source="/services/python")
    return messages


def _by_key(got: list[tuple[str, pika.BasicProperties, dict[str, Any]]]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for key, properties, body in got:
        out.setdefault(key, []).append((properties, body))
    return out


def test_go_runs_a_chain_step_and_forwards_the_next_one(wf_harness: list[str], vhost: str) -> None:
    wf = str(uuid.uuid4())
    frames = [_step("1", SCORE, {"user_id": "ada", "trail": ["py"]}), _step("2", NOTIFY, mode="merge")]
    (message,) = _messages(frames, None, wf)
    expected_next = _messages(frames[1:], {"user_id": "ada", "points": 3.0, "trail": ["py", "go"]}, wf)[0]
    with serving(wf_harness, vhost), probe(vhost, [NOTIFY.routing_key]) as p:
        p.publish(message)
        by_key = _by_key(p.take(2))
    (forwarded, body), = by_key[NOTIFY.routing_key]
    assert body == {"user_id": "ada", "points": 3.0, "trail": ["py", "go"]} == json.loads(expected_next.body)
    assert forwarded.message_id == step_event_id(wf, "2") == expected_next.message_id
    headers = forwarded.headers
    assert headers["eventbus-workflow-id"] == wf and headers["eventbus-workflow-step"] == "2"
    assert parse_slip(headers["eventbus-workflow-slip"]) == parse_slip(expected_next.headers["eventbus-workflow-slip"])
    assert headers["cloudEvents_id"] == forwarded.message_id and headers["cloudEvents_type"] == NOTIFY.type
    assert headers["cloudEvents_source"] == f"/services/{SERVICE}" and headers["cloudEvents_specversion"] == "1.0"
    (report_props, report_body), = by_key["eventbus.workflow.step_completed.v1"]
    report = StepCompleted.model_validate(report_body)  # extra="forbid": Go writes exactly Python's fields
    assert report_props.message_id == report_id(wf, "1", "completed")
    assert (report.workflow_id, report.step, report.type, report.attempt) == (wf, "1", SCORE.type, 1)
    assert report.result_type == NOTIFY.type and report.join is None
    assert report.started_at <= report.finished_at


def test_a_chord_member_run_by_go_reports_its_join(wf_harness: list[str], vhost: str) -> None:
    wf = str(uuid.uuid4())
    group = GroupFrame("g", ((_step("g.0", SQUARE, {"n": 2}),), (_step("g.1", SQUARE, {"n": 3}),)))
    callback = _step("cb", TOTAL, mode="field", field="results")
    messages = _messages([group, callback], None, wf)
    assert len(messages) == 2
    with serving(wf_harness, vhost), probe(vhost, [TOTAL.routing_key]) as p:
        for message in messages:
            p.publish(message)
        got = p.take(2)
        assert p.take(0, timeout=0.5) == []  # the callback is the engine's to publish, never the member's
    reports = sorted((StepCompleted.model_validate(body) for _, _, body in got), key=lambda r: r.step)
    for index, (report, n) in enumerate(zip(reports, (2, 3), strict=True)):
        assert report.step == f"g.{index}" and report.result_type == SQUARED.type
        assert report.join is not None
        assert (report.join.group, report.join.index, report.join.size) == ("g", index, 2)
        assert report.join.result == {"n": n, "square": n * n}
        assert report.join.next == [frame_to_json(callback)] and report.join.on_error == []


def test_bad_steps_fail_their_workflow_with_a_report_and_the_on_error_step(wf_harness: list[str], vhost: str) -> None:
    on_error = (_step("err", CLEANUP, mode="field", field="failure"),)
    dlq = f"{SERVICE}.{SQUARE.type}.dlq"
    wf_bad, wf_failing, wf_misfit = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    (bad,) = _messages([_step("1", SQUARE, {"n": 1})], None, wf_bad)
    then = _step("2", TOTAL, mode="field", field="results")
    (failing,) = _messages([_step("1", SQUARE, {"n": 4, "fail": True}), then], None, wf_failing, on_error)
    # a squared result merged into a score step breaks the score contract: the square step fails
    (misfit,) = _messages([_step("1", SQUARE, {"n": 5}), _step("2", SCORE, mode="merge")], None, wf_misfit, on_error)
    with serving(wf_harness, vhost), probe(vhost, [CLEANUP.routing_key, SCORE.routing_key, TOTAL.routing_key]) as p:
        p.publish(bad, {"eventbus-workflow-slip": '{"v":2,"next":[]}'})
        p.publish(failing)
        p.publish(misfit)
        by_key = _by_key(p.take(5))
        parked = p.dead_letters(dlq, 3)
    assert SCORE.routing_key not in by_key and TOTAL.routing_key not in by_key  # later steps never run
    reports = [WorkflowFailed.model_validate(body) for _, body in by_key["eventbus.workflow.failed.v1"]]
    failed = {report.workflow_id: report for report in reports}
    assert sorted(failed) == sorted([wf_bad, wf_failing, wf_misfit])
    assert failed[wf_bad].reason == "invalid_slip" and failed[wf_bad].error_type == "SlipError"
    assert failed[wf_failing].reason == "handler_error" and "square of 4 failed on purpose" in failed[wf_failing].error
    assert failed[wf_misfit].reason == "workflow_result_invalid"
    for wf, message in ((wf_bad, bad), (wf_failing, failing), (wf_misfit, misfit)):
        report = failed[wf]
        assert (report.step, report.type, report.message_id, report.queue, report.attempt) == (
            "1", SQUARE.type, message.message_id, dlq, 1)
    reasons = {props.headers["eventbus-workflow-id"]: props.headers["eventbus-park-reason"] for props in parked}
    assert reasons == {wf_bad: "invalid_slip", wf_failing: "handler_error", wf_misfit: "workflow_result_invalid"}
    # on_error runs for the failed steps whose slip could be read, with the failure as its input
    cleanups = {props.headers["eventbus-workflow-id"]: (props, body) for props, body in by_key[CLEANUP.routing_key]}
    assert sorted(cleanups) == sorted([wf_failing, wf_misfit])
    for wf, (props, body) in cleanups.items():
        assert props.message_id == step_event_id(wf, "err") and props.headers["eventbus-workflow-step"] == "err"
        assert set(body) == {"failure"} and WorkflowFailed.model_validate(body["failure"]) == failed[wf]
        assert parse_slip(props.headers["eventbus-workflow-slip"]).next == ()


def _settings(vhost: str, service: str) -> BusSettings:
    return BusSettings(urls=(amqp_url(vhost),), service=service, handler_timeout=10, shutdown_grace=2)


async def test_python_requests_answered_by_go(wf_harness: list[str], vhost: str) -> None:
    with serving(wf_harness, vhost) as go:
        async with EventBus(_settings(vhost, "caller")) as caller:
            before = await asyncio.to_thread(vhost_queues, vhost)
            result = await caller.request(demo.SquareV1(n=7), reply=demo.SquaredV1, timeout=15)
            assert isinstance(result, demo.SquaredV1) and (result.n, result.square) == (7, 49)
            with pytest.raises(RemoteTaskError) as raised:
                await caller.request(demo.SquareV1(n=2, fail=True), reply=demo.SquaredV1, timeout=15)
            assert raised.value.remote_type == "*errors.errorString"
            assert raised.value.remote_message == "square of 2 failed on purpose"
            go.stop(signal.SIGKILL)  # a downed responder: the request waits in its queue, the caller times out
            with pytest.raises(RequestTimeoutError):
                await caller.request(demo.SquareV1(n=3), reply=demo.SquaredV1, timeout=1)
            after = await asyncio.to_thread(vhost_queues, vhost)
    assert after == before and not [q for q in after if "reply" in q or q.startswith("amq.")]


async def _go_request(harness: list[str], vhost: str, *args: str) -> dict[str, Any]:
    """The Go harness's request, run off the event loop (a Python responder may be serving on it)."""
    command = [*harness, "request", "--url", amqp_url(vhost), "--service", "gocaller", *args]
    out = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


async def test_go_requests_answered_by_python(wf_harness: list[str], vhost: str) -> None:
    responder = EventBus(_settings(vhost, SERVICE))

    @responder.subscribe(demo.SquareV1, retry=RetryPolicy(max_attempts=1))
    async def square(event: demo.SquareV1) -> demo.SquaredV1:
        if event.fail:
            raise ValueError(f"python will not square {event.n}")
        return demo.SquaredV1(n=event.n, square=event.n * event.n)

    async with responder:
        await responder.start()
        before = await asyncio.to_thread(vhost_queues, vhost)
        assert await _go_request(wf_harness, vhost, "--n", "6") == {"n": 6, "square": 36}
        assert await _go_request(wf_harness, vhost, "--n", "2", "--fail") == {
            "error": "remote", "remote_type": "builtins.ValueError", "remote_message": "python will not square 2"}
    # the responder is down (its queue stays): Go's request times out
    assert await _go_request(wf_harness, vhost, "--n", "9", "--timeout-ms", "700") == {"error": "timeout"}
    after = await asyncio.to_thread(vhost_queues, vhost)
    assert after == before and not [q for q in after if "reply" in q or q.startswith("amq.")]


async def test_a_request_with_no_responder_times_out_in_both_languages(wf_harness: list[str], vhost: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url(vhost)))
    try:  # a queue bound to the requests that nobody consumes
        channel = connection.channel()
        channel.exchange_declare("tasks", "topic", durable=True)
        channel.queue_declare("nobody", durable=True)
        channel.queue_bind("nobody", "tasks", SQUARE.routing_key)
    finally:
        connection.close()
    assert await _go_request(wf_harness, vhost, "--n", "1", "--timeout-ms", "500") == {"error": "timeout"}
    async with EventBus(_settings(vhost, "caller")) as caller:
        with pytest.raises(RequestTimeoutError):
            await caller.request(demo.SquareV1(n=1), reply=demo.SquaredV1, timeout=0.5)
    assert vhost_queues(vhost) == ["nobody"]


@pytest.mark.redis
def test_go_drops_a_step_of_a_revoked_workflow(wf_harness: list[str], vhost: str) -> None:
    store = redis.Redis.from_url(REDIS_URL)
    revoked_wf, live_wf = str(uuid.uuid4()), str(uuid.uuid4())
    key = f"eventbus:revoked:{revoked_wf}"
    store.set(key, "2026-01-01T00:00:00Z", ex=600)
    try:
        frames = [_step("1", SCORE, {"user_id": "bob", "trail": []}), _step("2", NOTIFY, mode="merge")]
        with serving(wf_harness, vhost, "--revocations", REDIS_URL), probe(vhost, [NOTIFY.routing_key]) as p:
            p.publish(_messages(frames, None, revoked_wf)[0])
            p.publish(_messages(frames, None, live_wf)[0])
            got = p.take(2)  # the live workflow's next step and report, nothing of the revoked one
            assert p.take(0, timeout=1) == []
            queue = f"{SERVICE}.{SCORE.type}"
            assert p.depth(queue) == 0 and p.depth(queue + ".dlq") == 0  # acked and dropped, not parked
    finally:
        store.delete(key)
        store.close()
    by_key = _by_key(got)
    ((forwarded, _),) = by_key[NOTIFY.routing_key]
    ((_, report),) = by_key["eventbus.workflow.step_completed.v1"]
    assert forwarded.headers["eventbus-workflow-id"] == report["workflow_id"] == live_wf


async def test_single_active_consumer_declares_pythons_queue(wf_harness: list[str], vhost: str) -> None:
    with serving(wf_harness, vhost, "--single-active"):
        same = EventBus(_settings(vhost, SERVICE))
        same.subscribe(demo.SquareV1, single_active_consumer=True)(lambda event: None)
        async with same:
            await same.start()  # the same arguments: no mismatch
        other = EventBus(_settings(vhost, SERVICE))
        other.subscribe(demo.SquareV1)(lambda event: None)
        async with other:
            with pytest.raises(TopologyMismatchError):
                await other.start()


async def test_a_chain_started_in_python_runs_its_go_step_and_comes_back(wf_harness: list[str], vhost: str) -> None:
    """Python → Go → Python → Python through the slip alone: no engine, no shared code."""
    from eventbus.workflows import chain, step

    records: list[demo.RecordV1] = []
    bus = EventBus(_settings(vhost, "wfpy"))

    @bus.subscribe(demo.NotifyV1)
    async def notify(event: demo.NotifyV1) -> demo.RecordV1:
        return demo.RecordV1(user_id=event.user_id, points=event.points, message=f"{event.points:g} points",
                             trail=[*event.trail, "py"])

    @bus.subscribe(demo.RecordV1)
    async def record(event: demo.RecordV1) -> None:
        records.append(event)

    with serving(wf_harness, vhost):
        async with bus:
            await bus.start()
            workflow_id = await bus.start(chain(
                step(demo.ScoreV1, {"user_id": "grace", "trail": ["py"]}, returns=demo.NotifyV1),
                step(demo.NotifyV1, returns=demo.RecordV1),
                step(demo.RecordV1),
            ))
            deadline = time.monotonic() + 30
            while not records and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
    assert records == [demo.RecordV1(user_id="grace", points=5.0, message="5 points", trail=["py", "go", "py"])]
    assert isinstance(workflow_id, str)
