"""A chord of 10 000 on the real broker (a private vhost) and Redis (a private prefix), its members and
the engine run by three ``eventbus worker`` processes that are SIGKILLed again and again while it runs (and restarted):
the callback is published once (one id, counted on a probe queue bound beside its queue), runs with all
10 000 results in index order, and the join counted each member once however often it was redelivered."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pika
import pika.exceptions
import pytest
import redis

from eventbus.workflow_engine import Workflows
from eventbus.workflows import ENGINE_QUEUE, chord, group
from eventbus.workflows._slip import step_event_id
from tests._queues import queue_depth as _depth

from .._databases import REDIS_URL
from .._vhosts import amqp_url, private_vhost
from ._chord_worker import SERVICE, make_bus

pytestmark = [pytest.mark.broker, pytest.mark.redis]  # 50-60 s on 2 shared cores

ROOT = Path(__file__).resolve().parents[2]
SIZE = int(os.environ.get("CHORD_SIZE", "10000"))
WORKERS = 3
KILLS = int(os.environ.get("CHORD_KILLS", "6"))


@pytest.fixture
def url() -> Iterator[str]:
    with private_vhost("wf-chord") as vhost:
        yield amqp_url(vhost)


class Workers:
    """The worker processes, started, SIGKILLed and stopped by the test."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url, self.prefix = url, prefix
        self.processes: list[subprocess.Popen[bytes]] = []
        self.kills = 0
        self.log = open(os.environ.get("CHORD_LOG", os.devnull), "ab")  # noqa: SIM115

    def spawn(self) -> None:
        env = {**os.environ, "CHORD_URL": self.url, "CHORD_PREFIX": self.prefix}
        self.processes.append(subprocess.Popen(
            [sys.executable, "-m", "eventbus_cli", "worker", "tests.workflows._chord_worker:bus", "--log-level",
             "warning"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=self.log))

    def kill_one(self, rng: random.Random) -> None:
        victim = rng.choice(self.processes)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        self.processes.remove(victim)
        self.kills += 1
        self.spawn()

    def stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()




def _exists(url: str, queue: str) -> bool:
    try:
        _depth(url, queue)
    except pika.exceptions.ChannelClosedByBroker:
        return False
    return True


def _probe(url: str, routing_key: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.exchange_declare("tasks", exchange_type="topic", durable=True)
    channel.queue_declare("probe", durable=True)
    channel.queue_bind("probe", "tasks", routing_key=routing_key)
    connection.close()


def _probe_ids(url: str) -> list[str]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    ids = []
    while True:
        method, properties, _ = channel.basic_get("probe", auto_ack=True)
        if method is None:
            break
        ids.append(properties.message_id)
    connection.close()
    return ids


async def test_a_chord_of_ten_thousand_fires_once_while_workers_are_killed(url: str, redis_prefix: str) -> None:
    probe = redis.Redis.from_url(REDIS_URL)
    bus, (part, collect) = make_bus(url, redis_prefix)
    queues = [f"{SERVICE}.{part.type}", f"{SERVICE}.{collect.type}", ENGINE_QUEUE]
    workers = Workers(url, redis_prefix)
    rng = random.Random(int(os.environ.get("CHORD_SEED", "16")))
    try:
        for _ in range(WORKERS):
            workers.spawn()
        _probe(url, collect.type)
        deadline = time.monotonic() + 60
        while not all(_exists(url, q) for q in queues):  # the workers declared their queues
            assert time.monotonic() < deadline, "the workers did not start"
            await asyncio.sleep(0.2)
        async with bus:
            workflow_id = await bus.start(chord(group(part.si(i=i) for i in range(SIZE)), collect.s()))

        def callbacks() -> list[dict[str, object]]:
            return [json.loads(c) for c in probe.lrange(f"{redis_prefix}probe:callbacks", 0, -1)]

        # kill a worker every 0.3 to 0.8 s while the members run, up to KILLS times (the chord takes ~5-10 s)
        deadline = time.monotonic() + 150
        while not callbacks():
            assert time.monotonic() < deadline, "the callback did not run"
            if workers.kills < KILLS and int(probe.get(f"{redis_prefix}probe:runs") or 0) > 200:
                workers.kill_one(rng)
            await asyncio.sleep(rng.uniform(0.3, 0.8))

        # let every delivery settle: a graceful stop hands back what is unacked, so a depth of 0 after it
        # means every member, report and callback was handled; any left over get another worker
        async with Workflows(REDIS_URL, prefix=redis_prefix) as workflows:
            for _ in range(5):
                for _ in range(100):
                    view = await workflows.show(workflow_id)
                    if view is not None and view.state == "completed":
                        break
                    await asyncio.sleep(0.2)
                workers.stop()
                if sum(_depth(url, q) for q in queues) == 0:
                    break
                workers.spawn()
            view = await workflows.show(workflow_id)
        assert sum(_depth(url, q) for q in queues) == 0
    finally:
        workers.stop()

    published = _probe_ids(url)
    ran = callbacks()
    runs = int(probe.get(f"{redis_prefix}probe:runs") or 0)
    redelivered = int(probe.get(f"{redis_prefix}probe:redelivered") or 0)
    assert view is not None
    join = next(iter(view.joins.values()))
    print(f"\nchord of {SIZE}: members published {SIZE}, member runs {runs}, member redeliveries {redelivered}, "
          f"counted {join.counted}, joins fired {len(view.joins)}, callback copies published {len(published)} "
          f"(distinct ids {len(set(published))}), callback runs {len(ran)}, workers SIGKILLed {workers.kills}")
    assert join.callbacks == ["0.cb"]  # the chord's callback step
    callback_id = step_event_id(workflow_id, "0.cb")
    assert workers.kills == KILLS
    assert runs >= SIZE
    assert join.counted == join.size == SIZE
    assert set(published) == {callback_id}  # one callback id; more than one copy only if an engine died
    assert {c["id"] for c in ran} == {callback_id}  # between its publish and its mark (never seen so far)
    assert all(c["count"] == SIZE and c["in_order"] for c in ran)
    assert view.state == "completed"
    assert {s.state for s in view.steps.values()} == {"completed"} and len(view.steps) == SIZE + 1
