"""The scheduler on the in-memory broker (``eventbus.testing``): a cron schedule driven by the
broker's ``MemoryClock``, two replicas, one leader, each tick run once, failover; no RabbitMQ."""

from __future__ import annotations

from datetime import timedelta

from eventbus import BusSettings, LeaderLock, MemoryTickLedger, Scheduler, Tick
from eventbus.testing import MemoryBroker, in_memory


def minutes(count: int) -> list[str]:
    """The tick ids of the job's first ``count`` minutes on the memory clock (from 2026-01-01 00:00)."""
    return [f"job:every-minute:2026-01-01T00:{m:02d}:00Z" for m in range(count)]


async def replicas(broker: MemoryBroker, runs: list[tuple[str, str]], count: int = 2) -> list[Scheduler]:
    """``count`` started replicas of one service sharing a tick ledger, each running every minute."""
    ledger = MemoryTickLedger()
    made = []
    for n in range(count):
        scheduler = Scheduler(BusSettings("svc"), ledger=ledger, lock_retry=5, transport=broker.transport())

        @scheduler.job("* * * * *", name="every-minute")
        async def every_minute(tick: Tick, name: str = f"r{n}") -> None:
            runs.append((tick.id, name))

        made.append(scheduler)
        await scheduler.start()
    return made


async def test_two_replicas_run_each_tick_once_on_the_memory_clock() -> None:
    broker = MemoryBroker()
    runs: list[tuple[str, str]] = []
    a, b = await replicas(broker, runs)
    try:
        await broker.settle()
        for _ in range(5):
            await broker.clock.advance(60)
        leaders = [s for s in (a, b) if s.is_leader]
        assert len(leaders) == 1
        follower = b if leaders[0] is a else a
        assert follower.stats.fired == 0 and leaders[0].stats.fired == 6
        assert list(broker.locks()) == ["svc.scheduler.leader"]
    finally:
        await a.stop()
        await b.stop()
    assert [tick for tick, _ in runs] == minutes(6)
    assert broker.messages("svc.scheduler.ticks") == [] and broker.unacked() == 0


async def test_when_the_leader_goes_the_other_replica_takes_over() -> None:
    broker = MemoryBroker()
    runs: list[tuple[str, str]] = []
    a, b = await replicas(broker, runs)
    try:
        await broker.clock.advance(120)
        leader, follower = (a, b) if a.is_leader else (b, a)
        await leader.stop()  # the leader's process is gone: its lock with it
        assert broker.locks() == {}
        await broker.clock.advance(5)  # the follower's next attempt
        assert follower.is_leader
        await broker.clock.advance(180)
    finally:
        await a.stop()
        await b.stop()
    assert [tick for tick, _ in runs] == minutes(6)
    assert follower.stats.fired >= 3
    # the new leader re-fires the latest tick (it cannot know whether the old one did): run once
    assert follower.stats.duplicates + leader.stats.duplicates == follower.stats.fired + leader.stats.fired - 6


async def test_a_leader_cut_off_loses_the_lock_and_one_replica_leads_again() -> None:
    broker = MemoryBroker()
    runs: list[tuple[str, str]] = []
    a, b = await replicas(broker, runs)
    try:
        await broker.clock.advance(60)
        broker.drop_connections()  # every connection at once: the lock and the ticks sessions
        await broker.clock.advance(5)
        assert [s.is_leader for s in (a, b)].count(True) == 1
        await broker.clock.advance(120)
    finally:
        await a.stop()
        await b.stop()
    assert [tick for tick, _ in runs] == minutes(4)


async def test_the_leader_lock_has_one_holder_per_name() -> None:
    broker = MemoryBroker()
    settings = BusSettings("svc")
    first = LeaderLock(settings, "svc.lock", transport=broker.transport())
    second = LeaderLock(settings, "svc.lock", transport=broker.transport())
    assert await first.try_acquire() is True
    assert await second.try_acquire() is False
    broker.lose_locks()
    await broker.settle()
    assert first.lost.is_set() and not first.held
    assert await second.try_acquire() is True and await first.try_acquire() is False
    await second.release()
    assert await first.try_acquire() is True
    await first.release()


async def test_a_scheduler_made_inside_in_memory_runs_on_the_memory_broker() -> None:
    broker = MemoryBroker()
    ran: list[str] = []
    with in_memory(broker):
        scheduler = Scheduler(BusSettings("svc"))

    @scheduler.job("*/10 * * * *", name="ten", misfire_grace=timedelta(minutes=1))
    def ten(tick: Tick) -> None:  # a plain function runs in a thread
        ran.append(tick.id)

    await scheduler.start()
    try:
        await broker.clock.advance(30 * 60)
    finally:
        await scheduler.stop()
    assert ran == [f"job:ten:2026-01-01T00:{m}0:00Z" for m in range(4)]
