"""``eventbus worker``: a real process, real signals, real broker; exit codes and what got handled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventbus import BusSettings, SyncEventBus
from eventbus_contracts import REGISTRY

from .._processes import APP_SOURCE, ROOT, Worker, read_ids
from ..conftest import BROKER_URL, RawBroker

CONTRACT = REGISTRY.get("chat.conversation.ended.v1")
EXAMPLE = CONTRACT.schema["examples"][0]


@pytest.fixture
def worker_service(raw: RawBroker) -> Iterator[str]:
    name = f"test-worker-{uuid.uuid4().hex[:10]}"
    raw.track(f"{name}.{CONTRACT.type}", f"{name}.{CONTRACT.type}.dlq")
    yield name


def _ids_in(raw: RawBroker, queue: str) -> list[str]:
    """Ids of the messages waiting in ``queue`` (other tests may publish the same event type)."""
    return [m.properties.message_id for m in raw.get(queue, raw.depth(queue), timeout=5)]


def _publish(count: int, prefix: str) -> list[str]:
    with SyncEventBus(BusSettings(service="test-worker-publisher", urls=(BROKER_URL,))) as bus:
        return [bus.publish(CONTRACT.validate_python({**EXAMPLE, "conversation_id": f"{prefix}_{n}"}))
                for n in range(count)]


@pytest.mark.broker
@pytest.mark.parametrize("target", ["app:bus", "app:make_sync_bus"])
def test_worker_handles_events_and_exits_0_on_sigterm(tmp_path: Path, worker_service: str, target: str) -> None:
    worker = Worker(tmp_path, target, "--concurrency", "4", "--log-format", "json",
                    env={"APP_SERVICE": worker_service, "APP_URL": BROKER_URL})
    try:
        worker.wait_started()
        ids = _publish(5, "conv_worker")
        worker.wait_for(lambda: set(ids) <= set(read_ids(worker.handled)), what="all events handled")
        worker.signal(signal.SIGTERM)
        assert worker.finish() == 0, worker.log
    finally:
        worker.kill()
    records = [json.loads(line) for line in worker.lines if line.startswith("{")]
    messages = [r["message"] for r in records]
    assert any("concurrency 4" in m for m in messages)
    assert messages[-1] == "worker stopped cleanly"
    assert all(r["level"] in ("info", "warning") for r in records), worker.log


@pytest.mark.broker
def test_sigterm_lets_the_running_handler_finish_within_the_grace_period(tmp_path: Path, worker_service: str,
                                                                         raw: RawBroker) -> None:
    worker = Worker(tmp_path, "app:bus", "--grace", "10",
                    env={"APP_SERVICE": worker_service, "APP_URL": BROKER_URL, "APP_SLEEP": "1.5"})
    try:
        worker.wait_started()
        [event_id] = _publish(1, "conv_grace")
        worker.wait_for(lambda: event_id in read_ids(worker.started), what="the handler to start")
        worker.signal(signal.SIGTERM)
        assert worker.finish() == 0, worker.log
    finally:
        worker.kill()
    assert read_ids(worker.handled) == [event_id]  # finished, and acked: nothing is left behind
    assert event_id not in _ids_in(raw, f"{worker_service}.{CONTRACT.type}")


@pytest.mark.broker
def test_a_handler_that_outlives_the_grace_period_is_requeued_not_lost(tmp_path: Path, worker_service: str,
                                                                       raw: RawBroker) -> None:
    worker = Worker(tmp_path, "app:bus", "--grace", "0.2",
                    env={"APP_SERVICE": worker_service, "APP_URL": BROKER_URL, "APP_SLEEP": "30"})
    try:
        worker.wait_started()
        [event_id] = _publish(1, "conv_requeue")
        worker.wait_for(lambda: event_id in read_ids(worker.started), what="the handler to start")
        worker.signal(signal.SIGTERM)
        assert worker.finish() == 0, worker.log
    finally:
        worker.kill()
    assert read_ids(worker.handled) == []
    assert event_id in _ids_in(raw, f"{worker_service}.{CONTRACT.type}")
    assert "requeueing their deliveries" in worker.log


def _run(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "eventbus_cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_module_here", "error: cannot import 'no_such_module_here'"),
        ("json:nope", "error: module 'json' has no attribute 'nope'"),
        ("json:JSONDecoder", "error: json:JSONDecoder is a JSONDecoder, not an EventBus"),
        ("json:dumps", "error: calling json:dumps failed: TypeError"),
        ("json", "error: module 'json' has no attribute 'bus'"),
    ],
)
def test_a_target_that_is_not_a_bus_is_one_line_and_exit_1(target: str, message: str) -> None:
    result = _run("worker", target)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(message), result.stderr
    assert "Traceback" not in result.stderr


def test_no_broker_is_exit_3_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP_SOURCE)
    result = _run("worker", "app:bus", cwd=tmp_path, env={
        "APP_SERVICE": "x", "APP_URL": "amqp://guest:secret@127.0.0.1:1/%2F", "APP_HANDLED_FILE": str(tmp_path / "h"),
        "APP_STARTED_FILE": str(tmp_path / "s"), "PYTHONPATH": str(tmp_path)})
    assert result.returncode == 3, result.stderr
    assert "rabbitmq-server -detached" in result.stderr and "secret" not in result.stderr
    assert "Traceback" not in result.stderr
