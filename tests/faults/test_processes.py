"""The consumer process dies (SIGKILL) or is told to stop (SIGTERM) under load: no event is lost.

The worker under test is ``eventbus worker app:bus`` (tests/_processes.py); its handler writes
each event id to a file *before* it returns, so every acked id is in the file.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from eventbus import EventBus

from .._processes import Worker, read_ids
from ._broker import FaultBroker
from ._events import CONTRACT, depth, drain, event
from .conftest import Tally, fast_settings


async def _publish(url: str, service: str, count: int, delivery_limit: int = 20) -> list[str]:
    """Declare the worker's queue first (so nothing is unroutable), then publish ``count`` events."""
    async with EventBus(fast_settings(service, url, delivery_limit=delivery_limit)) as declarer:
        declarer.subscribe(CONTRACT.model)(lambda event: None)
        await declarer.start()  # same queue and arguments as the worker's; stops consuming on close
    async with EventBus(fast_settings("fault-publisher", url)) as publisher:
        return await publisher.publish_many([event(f"conv_{n:05d}") for n in range(count)])


def test_sigkill_mid_run_then_restart_loses_nothing(fault_broker: FaultBroker, service: str, tmp_path: Path,
                                                   tally: Tally) -> None:
    published = asyncio.run(_publish(fault_broker.url, service, 20_000))
    env = {"APP_SERVICE": service, "APP_URL": fault_broker.url}
    first = Worker(tmp_path, "app:bus", "--concurrency", "200", env=env)
    try:
        first.wait_for(lambda: len(read_ids(first.handled)) >= 5_000, what="5 000 events handled")
        os.kill(first.process.pid, signal.SIGKILL)
        first.finish()
        at_kill = len(read_ids(first.handled))
        second = Worker(tmp_path, "app:bus", "--concurrency", "200", env=env)
        try:
            second.wait_for(lambda: set(published) <= set(read_ids(second.handled)), timeout=120,
                            what="every published id handled")
            second.signal(signal.SIGTERM)
            assert second.finish() == 0, second.log
        finally:
            second.kill()
    finally:
        first.kill()
    handled = read_ids(tmp_path / "handled.txt")
    lost = set(published) - set(handled)
    assert not lost
    assert depth(fault_broker.url, f"{service}.{CONTRACT.type}") == 0
    assert depth(fault_broker.url, f"{service}.{CONTRACT.type}.dlq") == 0
    tally.published, tally.handled, tally.lost = len(published), len(set(handled)), len(lost)
    tally.notes.update(handled_before_kill=at_kill, handled_twice=len(handled) - len(set(handled)))


def test_sigterm_under_load_finishes_or_requeues_in_flight(fault_broker: FaultBroker, service: str, tmp_path: Path,
                                                           tally: Tally) -> None:
    published = asyncio.run(_publish(fault_broker.url, service, 2_000))
    env = {"APP_SERVICE": service, "APP_URL": fault_broker.url, "APP_SLEEP": "0.05"}
    queue = f"{service}.{CONTRACT.type}"
    worker = Worker(tmp_path, "app:bus", "--concurrency", "50", "--grace", "0.02", env=env)
    try:
        worker.wait_for(lambda: len(read_ids(worker.handled)) >= 500, what="500 events handled")
        worker.signal(signal.SIGTERM)
        assert worker.finish() == 0, worker.log
    finally:
        worker.kill()
    handled = set(read_ids(worker.handled))
    started = set(read_ids(worker.started))
    remaining = depth(fault_broker.url, queue)
    # Acked = gone from the queue; every acked event was handled, the rest wait in the queue.
    assert len(handled) + remaining == len(published), (len(handled), remaining)
    requeued_in_flight = len(started - handled)
    assert requeued_in_flight > 0  # the short grace cut some handlers off: their events went back
    restarted = Worker(tmp_path, "app:bus", "--concurrency", "50", env=env)
    try:
        restarted.wait_for(lambda: set(published) <= set(read_ids(restarted.handled)), timeout=120,
                           what="the rest handled after a restart")
        restarted.signal(signal.SIGTERM)
        assert restarted.finish() == 0, restarted.log
    finally:
        restarted.kill()
    lost = set(published) - set(read_ids(restarted.handled))
    assert not lost
    tally.published, tally.handled, tally.lost = len(published), len(set(read_ids(restarted.handled))), len(lost)
    tally.notes.update(handled_before_sigterm=len(handled), cut_off_and_requeued=requeued_in_flight,
                       left_in_queue=remaining)


def test_a_poison_message_that_kills_the_process_is_parked_by_the_delivery_limit(
    fault_broker: FaultBroker, service: str, tmp_path: Path, tally: Tally
) -> None:
    env = {"APP_SERVICE": service, "APP_URL": fault_broker.url, "APP_CRASH_ON": "conv_00003",
           "APP_DELIVERY_LIMIT": "3"}
    published = asyncio.run(_publish(fault_broker.url, service, 10, delivery_limit=3))
    poison = published[3]
    crashes = 0
    while True:
        worker = Worker(tmp_path, "app:bus", "--concurrency", "1", env=env)
        try:
            worker.wait_for(lambda: worker.process.poll() is not None  # noqa: B023
                            or set(published) - {poison} <= set(read_ids(worker.handled)),  # noqa: B023
                            timeout=60, what="a crash or every good event handled")
            if worker.process.poll() is None:
                worker.signal(signal.SIGTERM)
                assert worker.finish() == 0, worker.log
                break
            assert worker.process.returncode == 17, worker.log
            crashes += 1
            assert crashes <= 4, "the delivery limit did not stop the crash loop"
        finally:
            worker.kill()
    dlq = [p.message_id for p in drain(fault_broker.url, f"{service}.{CONTRACT.type}.dlq")]
    handled = set(read_ids(tmp_path / "handled.txt"))
    assert dlq == [poison]
    assert handled == set(published) - {poison}
    tally.published, tally.handled, tally.parked = len(published), len(handled), len(dlq)
    tally.lost = len(set(published) - handled - set(dlq))
    tally.notes.update(process_crashes=crashes, delivery_limit=3)
