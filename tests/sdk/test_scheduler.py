"""The scheduler on the real broker: one leader among replicas, each tick run once, failover."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from eventbus import BusSettings, LeaderLock, Scheduler, SqlTickLedger, Tick, create_sql_engine
from eventbus.transports._lean import LeanSession, LeanTransport

from ..conftest import RawBroker

pytestmark = pytest.mark.broker


async def eventually(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait until ``predicate()`` holds (a condition, not a duration); fail after ``timeout``."""

    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


@pytest.fixture
def scheduler_queues(raw: RawBroker, service: str) -> Iterator[None]:
    raw.track(f"{service}.scheduler.ticks")
    yield


async def test_only_one_lock_holder_until_it_lets_go(settings: BusSettings) -> None:
    first, second = LeaderLock(settings, f"{settings.service}.lock"), LeaderLock(settings, f"{settings.service}.lock")
    try:
        assert await first.try_acquire() is True
        assert await second.try_acquire() is False
        assert first.held and not second.held
        await first.release()
        assert first.lost.is_set()
        await second.acquire(retry_interval=0.1)
        assert second.held and await first.try_acquire() is False
    finally:
        await first.release()
        await second.release()


async def test_a_follower_keeps_one_connection_for_its_attempts(settings: BusSettings) -> None:
    """No connection churn: a follower trying every few seconds reuses the connection it has."""
    name = f"{settings.service}.lock"
    leader, follower = LeaderLock(settings, name), LeaderLock(settings, name)
    try:
        assert await leader.try_acquire() is True
        assert await follower.try_acquire() is False
        transport = follower._transport
        assert isinstance(transport, LeanTransport)
        (kept,) = transport._lock_spares.values()
        assert await follower.try_acquire() is False
        assert list(transport._lock_spares.values()) == [kept] and not kept.is_closed
        await leader.release()
        assert await follower.try_acquire() is True  # on the kept connection: it holds the lock now
        assert transport._lock_spares == {} and not kept.is_closed
    finally:
        await leader.release()
        await follower.release()
    assert kept.is_closed


async def test_two_replicas_run_each_tick_once_and_fail_over(
    settings: BusSettings, tmp_path: Path, scheduler_queues: None, raw: RawBroker
) -> None:
    engine = create_sql_engine(f"sqlite:///{tmp_path / 'ticks.db'}")
    ledger = SqlTickLedger(engine)
    ledger.create_schema(engine)
    runs: list[tuple[str, str]] = []

    def replica(name: str) -> Scheduler:
        scheduler = Scheduler(settings, ledger=ledger, lock_retry=0.2, lease=timedelta(seconds=3))

        @scheduler.job("* * * * * *", name="every-second", misfire_grace=timedelta(seconds=30))
        async def every_second(tick: Tick) -> None:
            runs.append((tick.id, name))

        return scheduler

    a, b = replica("a"), replica("b")
    try:
        await a.start()
        await b.start()
        await eventually(lambda: len(runs) >= 4)
        leader, follower = (a, b) if a.is_leader else (b, a)
        assert leader.is_leader and not follower.is_leader
        assert follower.stats.fired == 0  # only the leader fires
        seen = len(runs)
        await leader.stop()  # failover: the follower takes the lock and keeps the ticks coming
        await eventually(lambda: follower.is_leader and len(runs) >= seen + 4)
    finally:
        await a.stop()
        await b.stop()
        engine.dispose()
    ids = [tick for tick, _ in runs]
    assert len(ids) == len(set(ids)), "a tick ran twice"
    assert ids == sorted(ids)
    # every fire either ran, was recognised as a repeat (the new leader re-fires the latest tick),
    # or was still waiting in the queue when both replicas had stopped
    waiting = raw.depth(f"{settings.service}.scheduler.ticks")
    assert a.stats.fired + b.stats.fired == len(ids) + a.stats.duplicates + b.stats.duplicates + waiting
    assert a.stats.duplicates + b.stats.duplicates <= 1
    assert all(ledger.state(tick) == "done" for tick in ids)


async def test_a_replica_whose_ticks_connection_drops_consumes_again(
    settings: BusSettings, scheduler_queues: None
) -> None:
    """The ticks connection heals itself (the lock's does not: a leader must notice a lost lock)."""
    runs: list[str] = []
    scheduler = Scheduler(settings, lock_retry=0.2)

    @scheduler.job("* * * * * *", name="every-second", misfire_grace=timedelta(seconds=30))
    async def every_second(tick: Tick) -> None:
        runs.append(tick.id)

    try:
        await scheduler.start()
        await eventually(lambda: len(runs) >= 2)
        first = scheduler._session
        assert isinstance(first, LeanSession) and first.connection._transport is not None
        first.connection._transport.abort()  # the socket dies under the consumer, as in a network fault
        await eventually(lambda: scheduler._session is not first and first.closed.done())
        seen = len(runs)
        await eventually(lambda: len(runs) >= seen + 2)
    finally:
        await scheduler.stop()
    assert len(runs) == len(set(runs))
