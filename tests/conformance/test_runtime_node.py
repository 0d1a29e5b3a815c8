"""The Node runtime (``runtimes/typescript``) against the Python SDK on the real broker.

The Python side runs in-process with the SDK; the Node side is the conformance harness's
``worker`` and ``publish`` modes (``harness/runtime_cli.ts``), built on the committed generated
package and the runtime. Every test runs in a private vhost that is deleted afterwards, so
declarations (the shared delay topology included) never meet another test's.

Proven here, one test each: the same topology declared by both without a mismatch (and a real
mismatch reported with its difference); retries with attempts 1, 2, 3 and delays not shorter
than the policy allows; parking after the last attempt, read and replayed by ``eventbus dlq``;
delayed publishes both ways, never early; one queue shared by a Python and a Node consumer; a
graceful SIGTERM; and the faults: SIGKILL of the Node consumer mid-stream, and ``close_connection``
from the broker during a Node publish and during a Node consume, counted as published / handled /
parked / lost (printed with ``pytest -s``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest

from eventbus import BusSettings, EventBus, EventContext
from eventbus._topology import queue_specs
from eventbus_contracts import REGISTRY

pytestmark = [pytest.mark.broker, pytest.mark.conformance]

EVENT = "context.friendship.status_changed.v1"
CONTRACT = REGISTRY.get(EVENT)
DATA = dict(CONTRACT.schema["examples"][0])
TICK_MS = 100


def _ctl(*args: str) -> str:
    result = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {result.stderr.strip() or result.stdout}")
    return result.stdout


@pytest.fixture
def vhost() -> Iterator[str]:
    """The URL of a vhost of our own; deleted with everything in it afterwards."""
    name = f"eb-rt-node-{uuid.uuid4().hex[:10]}"
    _ctl("add_vhost", name)
    try:
        _ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@127.0.0.1:5672/{name}"
    finally:
        _ctl("delete_vhost", name)


def _vhost_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


def close_connections(url: str, timeout: float = 30) -> int:
    """Close every client connection of this vhost from the broker side, once there is one; how many."""
    vhost = _vhost_name(url)
    deadline = time.monotonic() + timeout
    while True:
        pids = [
            parts[0]
            for parts in (line.split("\t") for line in _ctl("list_connections", "pid", "vhost").splitlines())
            if len(parts) == 2 and parts[1] == vhost
        ]
        if pids or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    closed = 0
    for pid in pids:
        try:
            _ctl("close_connection", pid, "conformance fault test")
            closed += 1
        except RuntimeError:
            pass  # already gone
    return closed


class Node:
    """A harness process; stdout JSON lines collected as they come."""

    def __init__(self, harness: list[str], *args: str) -> None:
        self.process = subprocess.Popen([*harness, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[Any] = []
        self.errors: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self._keep), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.errors.append), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: Any, keep: Callable[[str], None]) -> None:
        for line in stream:
            keep(line.rstrip("\n"))

    def _keep(self, line: str) -> None:
        try:
            self.lines.append(json.loads(line))
        except json.JSONDecodeError:
            self.lines.append(line)

    def ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any('"ready":true' in line for line in self.errors):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"node worker not ready: {self.errors}")

    def wait(self, timeout: float = 120) -> int:
        code = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=5)
        return code

    def calls(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if isinstance(line, dict) and "attempt" in line]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)


def worker(harness: list[str], url: str, service: str, *, behaviour: str = "ok", max_attempts: int = 3,
           first_delay_ms: int = 500, factor: float = 2, count: int = 1, extra: tuple[str, ...] = ()) -> Node:
    node = Node(harness, "worker", "--url", url, "--service", service, "--event", EVENT, "--behaviour", behaviour,
                "--max-attempts", str(max_attempts), "--first-delay-ms", str(first_delay_ms), "--factor", str(factor),
                "--count", str(count), "--timeout-s", "120", *extra)
    node.ready()
    return node


def node_publish(harness: list[str], url: str, tmp_path: Path, count: int, *extra: str) -> Node:
    data = tmp_path / "event.json"
    data.write_text(json.dumps(DATA), encoding="utf-8")
    return Node(harness, "publish", "--url", url, "--service", "node-publisher", "--event", EVENT,
                "--data-file", str(data), "--count", str(count), *extra)


def published_ids(node: Node) -> tuple[int, list[str]]:
    """(at_ms, confirmed ids) from a finished publish."""
    header = node.lines[0]
    assert isinstance(header, dict) and "published" in header, (node.lines, node.errors)
    ids = [line for line in node.lines[1:] if isinstance(line, str)]
    assert header["published"] == len(ids)
    return header["at_ms"], ids


def python_bus(url: str, service: str, **settings: Any) -> EventBus:
    return EventBus(BusSettings(service=service, urls=(url,), confirm_timeout=10.0, shutdown_grace=2.0, **settings))


async def python_publishes(url: str, count: int, **options: Any) -> list[str]:
    """``count`` events published (confirmed) by the Python SDK; their ids."""
    async with python_bus(url, "py-publisher") as bus:
        return await bus.publish_many([CONTRACT.model.model_validate(DATA)] * count, **options)


def drain(url: str, queue: str) -> list[pika.spec.BasicProperties]:
    """Take every message off ``queue``; their properties."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        taken = []
        while True:
            method, properties, _ = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return taken
            taken.append(properties)
    finally:
        connection.close()


async def until(predicate: Callable[[], bool], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


def _report(name: str, published: set[str], handled: set[str], parked: set[str], lost: set[str]) -> None:
    """The counts of a fault or park test, for the closing note (visible with ``pytest -s``)."""
    print(f"{name}: published {len(published)} / handled {len(handled)} / parked {len(parked)} / lost {len(lost)}")


def queue_of(service: str) -> str:
    return f"{service}.{EVENT}"


# -- topology ---------------------------------------------------------------------------------


def _brief_v2_level(level: int) -> dict[str, Any]:
    """Delay level NN as the cluster design decided it, written out independently of both runtimes."""
    return {"x-queue-type": "quorum", "x-message-ttl": 100 * 2**level,
            "x-dead-letter-exchange": f"eventbus.delay.v2.{level - 1:02d}" if level else "eventbus.delay.v2.deliver",
            "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}


async def test_python_and_node_declare_the_same_topology_in_one_vhost(vhost: str, node_harness: list[str]) -> None:
    service = "shared-topology"
    # The delay machinery as decided for clusters, declared first by a third party: neither side may differ.
    connection = pika.BlockingConnection(pika.URLParameters(vhost))
    channel = connection.channel()
    for level in (0, 7, 22):
        channel.queue_declare(f"eventbus.delay.v2.{level:02d}", durable=True, arguments=_brief_v2_level(level))
    channel.exchange_declare("eventbus.delay.v2.unroutable", "fanout", durable=True)
    channel.exchange_declare("eventbus.delay.v2.deliver", "topic", durable=True,
                             arguments={"alternate-exchange": "eventbus.delay.v2.unroutable"})
    connection.close()

    bus = python_bus(vhost, service)
    bus.subscribe(CONTRACT.model)(lambda event: None)
    await bus.start()  # Python first: the consumer queue, its DLQ, bindings, its delay topology
    try:
        node = worker(node_harness, vhost, service, count=1)  # the same queue from Node: no mismatch
        node.stop()
        assert node.wait() == 0, node.errors
    finally:
        await bus.close()
    node = worker(node_harness, vhost, service, count=1)  # and Node re-declaring after Python
    node.stop()
    assert node.wait() == 0, node.errors

    main, dead = queue_specs(queue_of(service), "quorum", 20)
    check = pika.BlockingConnection(pika.URLParameters(vhost)).channel()
    for spec in (main, dead):
        check.queue_declare(spec.name, durable=True, arguments=spec.arguments)  # Python's own arguments still fit


def test_a_mismatch_is_reported_with_the_exact_difference(vhost: str, node_harness: list[str]) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(vhost))
    connection.channel().queue_declare(queue_of("mismatch"), durable=True, arguments={"x-queue-type": "classic"})
    connection.close()
    node = Node(node_harness, "worker", "--url", vhost, "--service", "mismatch", "--event", EVENT, "--behaviour",
                "ok", "--max-attempts", "1", "--first-delay-ms", "100", "--factor", "2", "--count", "1")
    assert node.wait(60) == 1
    text = "\n".join(node.errors)
    assert "TopologyMismatchError" in text
    assert f"queue '{queue_of('mismatch')}' already exists with other arguments" in text
    assert "inequivalent arg 'x-queue-type'" in text, node.errors[0]
    assert "received 'quorum' but current is 'classic" in text, node.errors[0]


def test_a_queue_from_before_the_safety_net_is_used_as_it_is(vhost: str, node_harness: list[str]) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(vhost))
    connection.channel().queue_declare(queue_of("legacy"), durable=True, arguments={"x-queue-type": "quorum"})
    connection.close()
    node = worker(node_harness, vhost, "legacy", count=1)  # ready: it declared and consumes, as Python would
    node.stop()
    assert node.wait() == 0, node.errors


# -- retries and parking ----------------------------------------------------------------------


async def test_node_retries_a_failing_handler_with_backoff(vhost: str, node_harness: list[str]) -> None:
    first, factor, jitter = 600, 2.0, 0.5
    node = worker(node_harness, vhost, "retrying", behaviour="fail:2", max_attempts=4, first_delay_ms=first,
                  factor=factor, count=3, extra=("--jitter", str(jitter)))
    ids = await python_publishes(vhost, 3)
    assert node.wait() == 0, node.errors
    by_id: dict[str, list[dict[str, Any]]] = {}
    for call in node.calls():
        by_id.setdefault(call["id"], []).append(call)
    assert sorted(by_id) == sorted(ids)
    for calls in by_id.values():
        assert [(c["attempt"], c["ok"]) for c in calls] == [(1, False), (2, False), (3, True)]
        for n, (before, after) in enumerate(itertools.pairwise(calls), start=1):
            nominal = first * factor ** (n - 1)
            # jitter draws from [d·(1-jitter), d]; ticks round to 100 ms: never sooner than this
            assert after["at_ms"] - before["at_ms"] >= nominal * (1 - jitter) - TICK_MS / 2
    assert drain(vhost, queue_of("retrying") + ".dlq") == []


async def test_node_parks_after_the_last_attempt_and_the_python_cli_shows_and_replays_it(
    vhost: str, node_harness: list[str]
) -> None:
    node = worker(node_harness, vhost, "parking", behaviour="always-fail", max_attempts=2, first_delay_ms=200,
                  count=2, extra=("--jitter", "0"))
    ids = sorted(await python_publishes(vhost, 2, subject="s1"))
    assert node.wait() == 0, node.errors
    assert sorted((c["id"], c["attempt"]) for c in node.calls()) == sorted((i, a) for i in ids for a in (1, 2))

    cli = [str(Path(sys.executable).parent / "eventbus")]
    shown = subprocess.run([*cli, "dlq", "show", queue_of("parking"), "--json", "--url", vhost],
                           capture_output=True, text=True, timeout=60, check=True)
    parked = [json.loads(line) for line in shown.stdout.splitlines()]
    assert sorted(p["id"] for p in parked) == ids
    for entry in parked:
        assert entry["type"] == EVENT and entry["reason"] == "handler_error" and entry["attempts"] == 2
        assert entry["error"] == "Error: induced failure on attempt 2" and entry["error_type"] == "Error"
        headers = entry["headers"]
        assert headers["eventbus-original-exchange"] == CONTRACT.exchange
        assert headers["eventbus-original-routing-key"] == EVENT
        assert headers["eventbus-original-queue"] == queue_of("parking")
        assert headers["cloudEvents_subject"] == "s1" and "x-death" not in headers
        assert "eventbus-retry-delay-ms" not in headers and "induced failure" in headers["eventbus-traceback"]
    parked_ids = {p["id"] for p in parked}
    _report("always-failing node handler", set(ids), set(), parked_ids, set(ids) - parked_ids)

    replayed = subprocess.run([*cli, "dlq", "replay", queue_of("parking"), "--all", "--url", vhost],
                              capture_output=True, text=True, timeout=60, check=True)
    assert replayed.stdout.startswith("replayed 2 of 2"), replayed.stdout
    again = worker(node_harness, vhost, "parking", behaviour="ok", count=2)
    assert again.wait() == 0, again.errors
    assert sorted((c["id"], c["attempt"], c["ok"]) for c in again.calls()) == [(i, 1, True) for i in ids]


# -- delayed publishing -----------------------------------------------------------------------


async def test_a_delayed_event_from_node_reaches_python_not_before_its_delay(
    vhost: str, node_harness: list[str], tmp_path: Path
) -> None:
    arrived: dict[str, float] = {}
    bus = python_bus(vhost, "py-delayed")

    @bus.subscribe(CONTRACT.model)
    async def record(event: Any, context: EventContext) -> None:
        arrived[context.id] = time.time() * 1000
        assert context.headers["eventbus-deliver-at"]

    await bus.start()
    try:
        publisher = node_publish(node_harness, vhost, tmp_path, 3, "--delay-ms", "2000")
        assert publisher.wait() == 0, publisher.errors
        at_ms, ids = published_ids(publisher)
        assert await until(lambda: len(arrived) == 3, 30)
    finally:
        await bus.close()
    assert sorted(arrived) == sorted(ids)
    assert all(moment >= at_ms + 2000 for moment in arrived.values())


async def test_a_delayed_event_from_python_reaches_node_not_before_its_delay(
    vhost: str, node_harness: list[str]
) -> None:
    node = worker(node_harness, vhost, "node-delayed", count=3)
    sent_ms = time.time() * 1000
    ids = await python_publishes(vhost, 3, delay=2.0)
    assert node.wait() == 0, node.errors
    calls = node.calls()
    assert sorted(c["id"] for c in calls) == sorted(ids)
    assert all(c["at_ms"] >= sent_ms + 2000 for c in calls)


# -- one queue, two languages -----------------------------------------------------------------


async def test_a_python_and_a_node_consumer_share_one_queue(vhost: str, node_harness: list[str]) -> None:
    service, total = "shared", 200
    python_handled: list[str] = []
    bus = python_bus(vhost, service, prefetch=5)

    @bus.subscribe(CONTRACT.model)
    async def handle(event: Any, context: EventContext) -> None:
        python_handled.append(context.id)
        await asyncio.sleep(0.005)

    await bus.start()
    node = worker(node_harness, vhost, service, count=total + 1, extra=("--prefetch", "5", "--handler-ms", "5"))
    try:
        ids = await python_publishes(vhost, total)
        node_handled = lambda: [c["id"] for c in node.calls()]  # noqa: E731
        assert await until(lambda: len(set(python_handled) | set(node_handled())) == total, 60)
    finally:
        node.stop()
        await bus.close()
    assert node.wait() == 0, node.errors
    python_ids, node_ids = set(python_handled), set(node_handled())
    assert python_ids | node_ids == set(ids)
    assert python_ids and node_ids, (len(python_ids), len(node_ids))
    assert not python_ids & node_ids  # no failures, so each delivery went to exactly one consumer
    print(f"shared queue: published {total}, python handled {len(python_ids)}, node handled {len(node_ids)}")


# -- faults -----------------------------------------------------------------------------------


async def test_sigkill_of_the_node_consumer_mid_stream_loses_nothing(vhost: str, node_harness: list[str]) -> None:
    service, total = "killed", 300
    first = worker(node_harness, vhost, service, count=total, extra=("--prefetch", "20", "--handler-ms", "20"))
    ids = set(await python_publishes(vhost, total))
    assert await until(lambda: len(first.calls()) >= 60, 60)
    first.stop(signal.SIGKILL)
    first.wait()
    before = {c["id"] for c in first.calls()}
    assert len(before) < total  # killed mid-stream

    second = worker(node_harness, vhost, service, count=total + 1, extra=("--prefetch", "20"))
    after: set[str] = set()
    try:
        def all_seen() -> bool:
            after.update(c["id"] for c in second.calls())
            return ids <= before | after

        await until(all_seen, 60)
    finally:
        second.stop()
    assert second.wait() == 0, second.errors
    redelivered = {c["id"] for c in second.calls() if c["attempt"] == 1} & before
    lost = ids - before - after
    _report("SIGKILL node consumer", ids, before | after, set(), lost)
    assert not lost
    assert redelivered  # what the killed worker held unacked came back to the new one
    assert drain(vhost, queue_of(service) + ".dlq") == []


async def test_close_connection_during_a_node_publish_loses_nothing_confirmed(
    vhost: str, node_harness: list[str], tmp_path: Path
) -> None:
    service, total = "publish-fault", 600
    main, dead = queue_specs(queue_of(service), "quorum", 20)
    connection = pika.BlockingConnection(pika.URLParameters(vhost))
    channel = connection.channel()
    channel.exchange_declare(CONTRACT.exchange, "topic", durable=True)
    for spec in (main, dead):
        channel.queue_declare(spec.name, durable=True, arguments=spec.arguments)
    channel.queue_bind(main.name, CONTRACT.exchange, routing_key=EVENT)
    connection.close()

    publisher = node_publish(node_harness, vhost, tmp_path, total, "--pace-ms", "5")  # about 3 s of publishing
    closed = close_connections(vhost)  # as soon as its connection is up
    code = publisher.wait()
    _, confirmed = published_ids(publisher)
    failed = [json.loads(line) for line in publisher.errors if line.startswith('{"failed"')]
    assert len(confirmed) + len(failed) == total  # every publish was confirmed or raised
    assert code == (0 if not failed else 1)
    stored = {p.message_id for p in drain(vhost, main.name)}
    lost = set(confirmed) - stored
    (again,) = [json.loads(line)["republished"] for line in publisher.errors if line.startswith('{"republished"')]
    _report(f"close_connection during node publish ({closed} closed, {again} sent again, {len(failed)} raised)",
            set(confirmed), set(), set(), lost)
    assert closed >= 1
    assert not lost


async def test_close_connection_during_a_node_consume_loses_nothing(vhost: str, node_harness: list[str]) -> None:
    service, total = "consume-fault", 600
    # four handlers of 40 ms at a time: about 6 s of consuming, so the close lands mid-stream
    node = worker(node_harness, vhost, service, count=total, extra=("--prefetch", "4", "--handler-ms", "40"))
    ids = set(await python_publishes(vhost, total))
    assert await until(lambda: len(node.calls()) >= 20, 60)
    closed = close_connections(vhost)
    handled_at_close = len({c["id"] for c in node.calls()})
    assert node.wait(120) == 0, node.errors  # it reconnected, re-declared, resumed and finished
    handled = {c["id"] for c in node.calls()}
    lost = ids - handled
    _report(f"close_connection during node consume ({closed} closed after {handled_at_close} handled)",
            ids, handled, set(), lost)
    assert closed >= 1 and handled_at_close < total
    assert not lost
    assert drain(vhost, queue_of(service)) == [] and drain(vhost, queue_of(service) + ".dlq") == []


async def test_sigterm_lets_the_node_handlers_in_flight_finish_and_leaves_the_rest_queued(
    vhost: str, node_harness: list[str]
) -> None:
    service, total = "graceful", 40
    node = worker(node_harness, vhost, service, count=total, extra=("--prefetch", "5", "--handler-ms", "800"))
    ids = set(await python_publishes(vhost, total))
    assert await until(lambda: len(node.calls()) >= 5, 60)
    node.stop(signal.SIGTERM)
    assert node.wait(60) == 0, node.errors
    started = {c["id"] for c in node.calls()}
    waiting = {p.message_id for p in drain(vhost, queue_of(service))}
    assert started and not started & waiting  # every handler that started finished and was acked
    assert started | waiting == ids  # the rest went back to the queue: nothing lost
    _report("SIGTERM node consumer", ids, started, set(), ids - started - waiting)
