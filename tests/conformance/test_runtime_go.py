"""The Go runtime (runtimes/go) beside the Python SDK on the real broker, in a private vhost.

The Python side runs in-process with the SDK; the Go side is the conformance harness built on
the committed generated module, in its ``worker`` and ``publish`` modes (the same command line
as the Node harness). What is proven here:

- Python and Go declare the same topology (queues, dead-letter queues, delay machinery) in one
  vhost, in either order, without a mismatch, and consume one queue together;
- a Go handler failing twice is retried through the delay queues as attempts 1, 2, 3, each not
  before its configured delay; one always failing is parked with Python's headers, and the
  Python CLI's ``eventbus dlq show`` and ``replay`` read and replay it;
- a delayed event published in Go arrives in Python not before its delay, and the other way;
- faults: SIGKILL of a Go consumer mid-stream, and ``close_connection`` of the vhost's Go
  connections during publish and consume: every failed publish is reported, nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pika
import pytest

from eventbus import BusSettings, EventBus, EventContext, TopologyMismatchError
from eventbus_contracts import REGISTRY
from tests.conftest import BROKER_URL

pytestmark = [pytest.mark.broker, pytest.mark.conformance]

STATUS = "context.friendship.status_changed.v1"
CONTRACT = REGISTRY.get(STATUS)
EXAMPLE = CONTRACT.schema["examples"][0]
TALLY: dict[str, dict[str, int]] = {}  # fault scenario → published / handled / parked / lost, for the run's notes


def _rabbitmqctl(*args: str) -> str:
    result = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {result.stderr or result.stdout}")
    return result.stdout


@pytest.fixture
def vhost() -> Iterator[str]:
    """A private vhost for one test (its queues, delay machinery and connections), deleted afterwards."""
    name = f"eb-go-{uuid.uuid4().hex[:10]}"
    _rabbitmqctl("add_vhost", name)
    try:
        _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield name
    finally:
        _rabbitmqctl("delete_vhost", name)


@pytest.fixture
def url(vhost: str) -> str:
    parts = urlsplit(BROKER_URL)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), "", ""))


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "status.json"
    path.write_text(json.dumps(EXAMPLE))
    return path


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class GoProcess:
    """A harness process whose stdout lines are JSON records, read as they come."""

    def __init__(self, args: list[str]) -> None:
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.records: list[dict[str, Any]] = []
        self.ids: set[str] = set()  # of the handler calls or published events seen so far
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                loop.call_soon_threadsafe(self._lines.put_nowait, line)
            loop.call_soon_threadsafe(self._lines.put_nowait, None)

        loop.run_in_executor(None, read)

    async def until(self, done: Callable[[list[dict[str, Any]]], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done(self.records):
            try:
                line = await asyncio.wait_for(self._lines.get(), max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                raise AssertionError(f"gave up after {timeout}s with {len(self.records)} records; "
                                     f"stderr: {self.stderr()}") from None
            if line is None:
                if done(self.records):
                    return
                raise AssertionError(f"exited with {self.process.wait()} after {len(self.records)} records: "
                                     f"{self.stderr()}")
            self._add(line)

    def _add(self, line: str) -> None:
        record = json.loads(line) if line.startswith("{") else {"id": line.strip()}  # publish: bare ids
        self.records.append(record)
        if "id" in record:
            self.ids.add(record["id"])

    async def finish(self, timeout: float = 60) -> int:
        """Wait for the exit and read every line it printed."""
        code = await asyncio.get_running_loop().run_in_executor(None, self.process.wait, timeout)
        while (line := await asyncio.wait_for(self._lines.get(), 30)) is not None:
            self._add(line)
        self._lines.put_nowait(None)  # stays at the end for later readers
        return code

    def stderr(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return "(still running)"
        return self.process.stderr.read()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _worker(go: list[str], url: str, service: str, *, behaviour: str = "ok", max_attempts: int = 5,
            first_delay_ms: int = 1000, factor: float = 2, count: int = 1, timeout_s: float = 120,
            extra: tuple[str, ...] = ()) -> GoProcess:
    """The harness's worker mode, without jitter so that each retry's delay is exact."""
    return GoProcess([*go, "worker", "--url", url, "--service", service, "--event", STATUS, "--behaviour", behaviour,
                      "--max-attempts", str(max_attempts), "--first-delay-ms", str(first_delay_ms),
                      "--factor", str(factor), "--count", str(count), "--timeout-s", str(timeout_s), "--jitter", "0",
                      *extra])


def _publisher(go: list[str], url: str, data_file: Path, count: int, delay_ms: int = 0) -> GoProcess:
    return GoProcess([*go, "publish", "--url", url, "--service", f"pub-{uuid.uuid4().hex[:6]}", "--event", STATUS,
                      "--data-file", str(data_file), "--count", str(count), "--delay-ms", str(delay_ms)])


async def _consumers_on(url: str, queue: str, minimum: int = 1, timeout: float = 30) -> None:
    """Wait until ``queue`` exists with a consumer: its bindings are declared by then."""
    def check() -> int:
        connection = pika.BlockingConnection(pika.URLParameters(url))
        try:
            return connection.channel().queue_declare(queue, passive=True).method.consumer_count
        except pika.exceptions.ChannelClosedByBroker:
            return 0
        finally:
            if connection.is_open:
                connection.close()

    deadline = time.monotonic() + timeout
    while await asyncio.to_thread(check) < minimum:
        assert time.monotonic() < deadline, f"no consumer on {queue} after {timeout}s"
        await asyncio.sleep(0.2)


def _settings(url: str, service: str, **overrides: Any) -> BusSettings:
    return BusSettings(service=service, urls=(url,), confirm_timeout=10.0, **overrides)


def _event() -> Any:
    return CONTRACT.model.model_validate(EXAMPLE)


async def _publish(url: str, count: int, **options: Any) -> list[str]:
    bus = EventBus(_settings(url, f"pypub-{uuid.uuid4().hex[:6]}"))
    try:
        return [await bus.publish(_event(), **options) for _ in range(count)]
    finally:
        await bus.stop()
        await bus.close()


class PythonConsumer:
    """An in-process Python consumer of STATUS for ``service``; records (id, attempt, arrival ms)."""

    def __init__(self, url: str, service: str) -> None:
        self.bus = EventBus(_settings(url, service))
        self.seen: list[tuple[str, int, int]] = []

        @self.bus.subscribe(CONTRACT.model)
        async def record(_: Any, context: EventContext) -> None:
            self.seen.append((context.id, context.attempt, _now_ms()))

    async def __aenter__(self) -> PythonConsumer:
        await self.bus.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.bus.stop()
        await self.bus.close()


@pytest.fixture
async def stop_processes() -> AsyncIterator[list[GoProcess]]:
    started: list[GoProcess] = []
    yield started
    for process in started:
        process.kill()


def _attempts(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    calls: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if "attempt" in record:
            calls.setdefault(record["id"], []).append(record)
    return calls


async def test_python_and_go_declare_the_same_topology_in_either_order(
    url: str, go_harness: list[str], stop_processes: list[GoProcess]
) -> None:
    # Python first, then Go on the same queue.
    async with PythonConsumer(url, "svc-a"):
        pass
    worker = _worker(go_harness, url, "svc-a", count=1)
    stop_processes.append(worker)
    await _consumers_on(url, f"svc-a.{STATUS}")
    [event_id] = await _publish(url, 1)
    assert await worker.finish() == 0, worker.stderr()
    assert [(r["id"], r["attempt"], r["ok"]) for r in worker.records] == [(event_id, 1, True)]
    # Go first, then Python on the same queue; Python raises TopologyMismatchError on any difference.
    worker = _worker(go_harness, url, "svc-b", count=1)
    stop_processes.append(worker)
    await _consumers_on(url, f"svc-b.{STATUS}")
    try:
        async with PythonConsumer(url, "svc-b"):
            pass
    except TopologyMismatchError as exc:  # pragma: no cover - the failure this test exists for
        pytest.fail(f"Python and Go declare svc-b differently: {exc}")
    worker.process.send_signal(signal.SIGTERM)
    assert await worker.finish() == 0


async def test_a_go_handler_failing_twice_is_retried_after_the_configured_delays(
    url: str, go_harness: list[str], stop_processes: list[GoProcess]
) -> None:
    worker = _worker(go_harness, url, "retry", behaviour="fail:2", max_attempts=5, first_delay_ms=1000, factor=2,
                     count=3)
    stop_processes.append(worker)
    await _consumers_on(url, f"retry.{STATUS}")
    ids = await _publish(url, 3)
    assert await worker.finish(timeout=60) == 0, worker.stderr()
    calls = _attempts(worker.records)
    assert sorted(calls) == sorted(ids)
    for event_id in ids:
        runs = calls[event_id]
        assert [(r["attempt"], r["ok"]) for r in runs] == [(1, False), (2, False), (3, True)]
        first_gap, second_gap = runs[1]["at_ms"] - runs[0]["at_ms"], runs[2]["at_ms"] - runs[1]["at_ms"]
        assert 1000 <= first_gap < 15_000, first_gap  # 1 s, then 1 s * 2 (no jitter in the harness)
        assert 2000 <= second_gap < 15_000, second_gap


def _cli(*args: str) -> str:
    cli = Path(sys.executable).with_name("eventbus")
    result = subprocess.run([str(cli), *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"eventbus {' '.join(args)}: {result.stdout}\n{result.stderr}"
    return result.stdout


async def test_what_go_parks_the_python_cli_shows_and_replays(
    url: str, go_harness: list[str], stop_processes: list[GoProcess]
) -> None:
    queue = f"parks.{STATUS}"
    worker = _worker(go_harness, url, "parks", behaviour="always-fail", max_attempts=2, first_delay_ms=200, count=2)
    stop_processes.append(worker)
    await _consumers_on(url, queue)
    ids = await _publish(url, 2)
    assert await worker.finish(timeout=60) == 0, worker.stderr()
    assert {(r["id"], r["attempt"]) for r in worker.records} == {(i, a) for i in ids for a in (1, 2)}

    shown = [json.loads(line) for line in (await asyncio.to_thread(_cli, "dlq", "show", queue, "--json", "--url", url))
             .splitlines() if line.strip()]
    assert sorted(m["id"] for m in shown) == sorted(ids), shown
    for message in shown:
        assert (message["reason"], message["attempts"], message["original_queue"]) == ("handler_error", 2, queue)
        assert json.loads(message["body"]) == EXAMPLE  # byte for byte what Python published
        headers = message["headers"]
        assert headers["eventbus-park-reason"] == "handler_error"
        assert headers["eventbus-attempt"] == 2
        assert headers["eventbus-error"] == "*errors.errorString: attempt 2 fails on purpose"
        assert headers["eventbus-original-exchange"] == CONTRACT.exchange
        assert headers["eventbus-original-routing-key"] == STATUS
        assert headers["eventbus-original-queue"] == queue
        for name in ("eventbus-error-type", "eventbus-first-failure-at", "eventbus-last-failure-at",
                     "eventbus-parked-at"):
            assert headers[name], name
        assert "eventbus-retry-delay-ms" not in headers and "x-death" not in headers, headers

    await asyncio.to_thread(_cli, "dlq", "replay", queue, "--all", "--url", url)
    again = _worker(go_harness, url, "parks", count=2)
    stop_processes.append(again)
    assert await again.finish(timeout=60) == 0, again.stderr()
    assert sorted((r["id"], r["attempt"], r["ok"]) for r in again.records) == sorted((i, 1, True) for i in ids)


async def test_delayed_events_arrive_not_before_their_delay_across_languages(
    url: str, data_file: Path, go_harness: list[str], stop_processes: list[GoProcess]
) -> None:
    delay_ms = 2000
    # Go publishes, Python consumes.
    async with PythonConsumer(url, "late-py") as consumer:
        publisher = _publisher(go_harness, url, data_file, 2, delay_ms=delay_ms)
        assert await publisher.finish() == 0, publisher.stderr()
        summary, *lines = publisher.records
        assert summary["published"] == 2 and len(lines) == 2
        deadline = time.monotonic() + 30
        while len(consumer.seen) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert sorted(i for i, _, _ in consumer.seen) == sorted(line["id"] for line in lines)
        for _, attempt, arrived in consumer.seen:
            assert attempt == 1
            assert summary["at_ms"] + delay_ms <= arrived < summary["at_ms"] + delay_ms + 20_000
    # Python publishes, Go consumes.
    worker = _worker(go_harness, url, "late-go", count=2)
    stop_processes.append(worker)
    await _consumers_on(url, f"late-go.{STATUS}")
    sent = _now_ms()
    ids = await _publish(url, 2, delay=delay_ms / 1000)
    assert await worker.finish(timeout=60) == 0, worker.stderr()
    assert sorted(r["id"] for r in worker.records) == sorted(ids)
    for record in worker.records:
        assert sent + delay_ms <= record["at_ms"] < sent + delay_ms + 20_000


async def test_python_and_go_consumers_share_one_queue(
    url: str, go_harness: list[str], stop_processes: list[GoProcess]
) -> None:
    total = 200
    async with PythonConsumer(url, "shared") as consumer:
        worker = _worker(go_harness, url, "shared", count=total)
        stop_processes.append(worker)
        await _consumers_on(url, f"shared.{STATUS}", minimum=2)
        ids = set(await _publish(url, total))
        deadline = time.monotonic() + 60

        def handled() -> set[str]:
            return {i for i, _, _ in consumer.seen} | worker.ids

        while handled() < ids and time.monotonic() < deadline:
            with contextlib.suppress(AssertionError):  # not yet: read on
                await worker.until(lambda records: handled() >= ids, timeout=0.5)
        worker.process.send_signal(signal.SIGTERM)
        assert await worker.finish() == 0, worker.stderr()
    by_python = {i for i, _, _ in consumer.seen}
    by_go = {r["id"] for r in worker.records}
    assert by_python | by_go == ids
    assert by_python and by_go, f"python {len(by_python)}, go {len(by_go)}: the queue was not shared"


# -- faults ---------------------------------------------------------------------------------------


def _close_go_connections(vhost: str) -> list[str]:
    """Close every Go connection in ``vhost`` from the broker side; the roles of those closed."""
    closed = []
    listing = _rabbitmqctl("list_connections", "pid", "vhost", "client_properties", "--no-table-headers", "-q")
    for line in listing.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[1] == vhost and "(go)" in parts[2]:
            try:
                _rabbitmqctl("close_connection", parts[0], "fault test")
            except RuntimeError:
                continue  # gone already
            closed.append("publish" if ":publish (go)" in parts[2] else "consume")
    return closed


async def test_a_go_consumer_killed_mid_stream_loses_nothing(
    url: str, data_file: Path, go_harness: list[str], stop_processes: list[GoProcess]
) -> None:
    total = 5000
    declare = _worker(go_harness, url, "kill", count=total)  # declares the queue, then goes away
    stop_processes.append(declare)
    await _consumers_on(url, f"kill.{STATUS}")
    declare.process.send_signal(signal.SIGTERM)
    assert await declare.finish() == 0
    publisher = _publisher(go_harness, url, data_file, total)
    assert await publisher.finish(timeout=120) == 0, publisher.stderr()
    summary, *lines = publisher.records
    ids = {line["id"] for line in lines}
    assert summary["published"] == total and len(ids) == total
    first = _worker(go_harness, url, "kill", count=total)
    stop_processes.append(first)
    await first.until(lambda records: len(records) >= total // 10, timeout=60)
    first.process.send_signal(signal.SIGKILL)
    await first.finish()
    second = _worker(go_harness, url, "kill", count=total)
    stop_processes.append(second)
    before = set(first.ids)
    await second.until(lambda _: before | second.ids >= ids, timeout=120)
    second.process.send_signal(signal.SIGTERM)
    await second.finish()
    handled = before | second.ids
    twice = len(before & second.ids)
    TALLY["go consumer SIGKILLed mid-stream"] = {
        "published": total, "handled": len(handled & ids), "parked": 0, "lost": len(ids - handled),
        "killed_after": len(first.records), "handled_twice": twice,
    }
    print("tally", TALLY)
    assert len(first.records) < total, "killed too late to be mid-stream"
    assert handled >= ids


async def test_sigterm_lets_go_handlers_in_flight_finish_and_loses_nothing(
    url: str, data_file: Path, go_harness: list[str], stop_processes: list[GoProcess]
) -> None:
    total = 300
    slow = ("--handler-ms", "300", "--prefetch", "10")  # ten handlers of 0.3 s at a time
    first = _worker(go_harness, url, "drain", count=total, extra=slow)
    stop_processes.append(first)
    await _consumers_on(url, f"drain.{STATUS}")
    publisher = _publisher(go_harness, url, data_file, total)
    assert await publisher.finish(timeout=120) == 0, publisher.stderr()
    ids = set(publisher.ids)
    await first.until(lambda records: len(records) >= 40, timeout=60)
    stopped_at = time.monotonic()
    first.process.send_signal(signal.SIGTERM)
    assert await first.finish(timeout=30) == 0, first.stderr()  # drained within the grace period, exit 0
    drained_in = time.monotonic() - stopped_at
    second = _worker(go_harness, url, "drain", count=total)
    stop_processes.append(second)
    await second.until(lambda _: first.ids | second.ids >= ids, timeout=120)
    second.process.send_signal(signal.SIGTERM)
    await second.finish()
    TALLY["go consumer SIGTERMed under load"] = {
        "published": total, "handled": len((first.ids | second.ids) & ids), "parked": 0,
        "lost": len(ids - first.ids - second.ids), "done_before_sigterm_or_in_flight": len(first.ids),
        "handled_twice": len(first.ids & second.ids), "drained_in_s": round(drained_in, 1),
    }
    print("tally", TALLY)
    assert first.ids | second.ids >= ids
    # Handlers in flight finished and were acked: the next worker gets none of them again.
    assert not first.ids & second.ids, f"{len(first.ids & second.ids)} handled twice after a graceful stop"


async def test_broker_closing_go_connections_during_publish_and_consume_loses_nothing(
    vhost: str, url: str, data_file: Path, go_harness: list[str], stop_processes: list[GoProcess]
) -> None:
    total = 20_000
    began = time.monotonic()
    worker = _worker(go_harness, url, "cut", count=total, timeout_s=300)
    stop_processes.append(worker)
    await _consumers_on(url, f"cut.{STATUS}")
    publisher = _publisher(go_harness, url, data_file, total)
    stop_processes.append(publisher)
    closed: list[str] = []
    while publisher.process.poll() is None and closed.count("publish") < 2:  # while publishing (and consuming)
        await asyncio.sleep(0.3)
        closed += await asyncio.to_thread(_close_go_connections, vhost)
    code = await publisher.finish(timeout=240)
    published_after = time.monotonic() - began
    summary, *lines = publisher.records
    confirmed = {line["id"] for line in lines}
    failures = [json.loads(line) for line in publisher.stderr().splitlines() if line.startswith('{"failed"')]
    failed = {failure["failed"] for failure in failures}
    assert code == (1 if failed else 0), publisher.stderr()
    assert summary["published"] == len(confirmed) and len(confirmed) + len(failed) == total
    await worker.until(lambda records: len(records) > total // 2, timeout=120)
    closed += await asyncio.to_thread(_close_go_connections, vhost)  # while consuming only
    await worker.until(lambda _: worker.ids >= confirmed, timeout=240)
    worker.process.send_signal(signal.SIGTERM)
    await worker.finish()
    handled = worker.ids
    TALLY["close_connection during publish and consume"] = {
        "published": len(confirmed), "failed_publishes_reported": len(failed), "handled": len(handled),
        "parked": 0, "lost": len(confirmed - handled), "connections_closed": len(closed),
        "publishing_connections_closed": closed.count("publish"),
        "stored_though_reported_failed": len(handled & failed),
        "published_after_s": round(published_after), "done_after_s": round(time.monotonic() - began),
    }
    print("tally", TALLY)
    assert "publish" in closed and "consume" in closed, f"the fault was not injected: {closed}"
    assert confirmed <= handled
    assert all(failure["error"] for failure in failures)  # every failed publish was reported, with why
