"""Periodic jobs for a service with N replicas: each tick runs once, on RabbitMQ alone.

    every replica ──try──► lock <service>.scheduler.leader   (an exclusive queue; one holds it: the leader)
    leader: at each cron time ──publish tick (id job:<name>:<time>, confirmed)──►
            quorum queue <service>.scheduler.ticks ──► one replica (competing consumers)
            ──► claim the tick id in the ledger ──► done before? ack, skip : run, mark done, ack

Firing and running are split on purpose. Only the leader fires (the lock), and a fired tick is a
durable message, so a tick survives the leader dying right after firing it and the job runs on
whichever replica is free. The ledger (shared, e.g. SQL) makes a tick fired twice run once: a new
leader re-fires the latest tick under the coalescing policy of ``_cron`` because it cannot know
whether the old leader fired it.

What "runs once" means: a tick's job runs to completion once. The replica running it holds a
claim it renews while the job runs; a copy of the tick arriving meanwhile waits, then finds it
done. A replica that dies mid-job leaves the tick unacknowledged and its claim lapses after
``lease``; the broker redelivers the tick and another replica runs it again from the start, so
jobs must be idempotent. A job that raises is logged, counted and acknowledged: the next tick is
the retry, not a hot loop.

Everything goes through the bus's transport seam (``transports/_protocol.py``): the lock is the
transport's ``lock``, ticks are published through it and consumed with ``consume``. On the
in-memory broker of ``eventbus.testing`` (``memory_bus``, ``in_memory``) the scheduler therefore
runs as it does on RabbitMQ, paced by the broker's ``MemoryClock`` (``_clock``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import orjson

from .._envelope import format_time
from .._exceptions import ConfigurationError, ConnectionFailedError
from .._retry import ExponentialBackoff
from .._settings import BusSettings
from .._topology import QueueSpec
from ..transports import Transport, open_transport
from ..transports._broker import CONNECTION_ERRORS
from ..transports._protocol import Incoming, Properties, Session, Topology
from ._clock import Clock, clock_for
from ._cron import CronSchedule, due_tick, tick_id
from ._leader import LeaderLock
from ._tick_ledger import MemoryTickLedger, TickLedger

__all__ = ["ScheduledJob", "Scheduler", "SchedulerStats", "Tick"]

log = logging.getLogger("eventbus.scheduler")

_RECONNECT = ExponentialBackoff(first=0.5, factor=2.0, maximum=30.0, jitter=0.5)
_TICKS_QUEUE_ARGUMENTS = {"x-queue-type": "quorum"}

JobFunction = Callable[["Tick"], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class Tick:
    """One run of one job: what the job function receives."""

    id: str
    job: str
    scheduled_at: datetime
    trigger: Literal["schedule", "manual"] = "schedule"


@dataclass(frozen=True, slots=True)
class ScheduledJob:
    name: str
    schedule: CronSchedule
    function: JobFunction
    misfire_grace: timedelta | None


@dataclass(slots=True)
class SchedulerStats:
    """Counters since start: ticks this replica fired as leader, ran, skipped as repeats, saw fail."""

    fired: int = 0
    ran: int = 0
    duplicates: int = 0
    failed: int = 0
    missed: int = 0


def _parse_tick(body: bytes) -> Tick:
    data = orjson.loads(body)
    return Tick(
        id=str(data["id"]),
        job=str(data["job"]),
        scheduled_at=datetime.fromisoformat(data["scheduled_at"]),
        trigger="manual" if data.get("trigger") == "manual" else "schedule",
    )


class Scheduler:
    """Cron jobs for one service; run one per replica, each tick runs on one of them.

    ``@scheduler.job("0 */6 * * *")`` registers ``async def job(tick)`` (or a plain function,
    run in a thread). ``timezone`` is how cron expressions are read. ``lock_retry`` is how often
    a follower tries to become leader, which bounds how long ticks wait after a leader dies.
    ``transport`` is the bus's choice (default ``settings.transport``, or the memory broker
    inside ``eventbus.testing.in_memory``); ``clock`` defaults to the transport's own time (the
    memory broker's ``MemoryClock``) or the wall clock.
    """

    def __init__(
        self,
        settings: BusSettings,
        *,
        timezone: str = "UTC",
        ledger: TickLedger | None = None,
        lock_retry: float = 5.0,
        lease: timedelta = timedelta(seconds=30),
        clock: Clock | Callable[[], datetime] | None = None,
        transport: Transport | str | None = None,
    ) -> None:
        self.settings = settings
        self.timezone = timezone
        self.ledger: TickLedger = ledger if ledger is not None else MemoryTickLedger()
        self.lock_retry = lock_retry
        self.lease = lease
        self.owner = f"{settings.service}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stats = SchedulerStats()
        self.ticks_queue = f"{settings.service}.scheduler.ticks"
        self._ticks = Topology(
            f"scheduler-ticks:{self.ticks_queue}", queues=(QueueSpec(self.ticks_queue, dict(_TICKS_QUEUE_ARGUMENTS)),)
        )
        self._owns_transport = transport is None or isinstance(transport, str)
        self._transport = open_transport(transport, settings)
        self._clock = clock_for(clock, self._transport)
        self._lock = LeaderLock(
            settings, f"{settings.service}.scheduler.leader", transport=self._transport, clock=self._clock
        )
        self._jobs: dict[str, ScheduledJob] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._session: Session | None = None
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._stopped = asyncio.Event()

    # -- registration ----------------------------------------------------------------------------

    def job(
        self, cron: str, *, name: str | None = None, misfire_grace: timedelta | None = timedelta(hours=1)
    ) -> Callable[[JobFunction], JobFunction]:
        """Register a job; ``misfire_grace`` is how late a missed tick may still run (None: always)."""
        schedule = CronSchedule(cron, self.timezone)

        def register(function: JobFunction) -> JobFunction:
            job_name = name or function.__name__.replace("_", "-")
            if job_name in self._jobs:
                raise ConfigurationError(f"job {job_name!r} is registered twice")
            self._jobs[job_name] = ScheduledJob(job_name, schedule, function, misfire_grace)
            return function

        return register

    @property
    def jobs(self) -> dict[str, ScheduledJob]:
        return dict(self._jobs)

    @property
    def is_leader(self) -> bool:
        return self._lock.held

    # -- running a job ---------------------------------------------------------------------------

    async def _call(self, job: ScheduledJob, tick: Tick) -> None:
        if inspect.iscoroutinefunction(job.function):
            await job.function(tick)
        else:
            result = await asyncio.to_thread(job.function, tick)
            if inspect.isawaitable(result):
                await result

    async def run_now(self, name: str, *, scheduled_at: datetime | None = None) -> Tick:
        """Run a job here and now (for the CLI), outside the schedule and the ledger."""
        job = self._jobs.get(name)
        if job is None:
            raise ConfigurationError(f"no job named {name!r} (jobs: {', '.join(sorted(self._jobs)) or 'none'})")
        moment = scheduled_at or self._clock.utcnow()
        tick = Tick(id=f"job:{name}:manual:{format_time(moment)}", job=name, scheduled_at=moment, trigger="manual")
        await self._call(job, tick)
        return tick

    def _on_delivery(self, message: Incoming) -> None:
        """Called by the transport for each tick, in order: run it in a task of its own."""
        task = asyncio.get_running_loop().create_task(self._handle_tick(message))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _ack(self, message: Incoming) -> None:
        session = self._session
        if session is None or not session.owns(message):
            return  # its session is gone: the broker redelivers the tick
        try:
            session.ack(message)
        except CONNECTION_ERRORS as exc:
            log.debug("could not ack a tick delivery: %s", exc)

    async def _handle_tick(self, message: Incoming) -> None:
        try:
            tick = _parse_tick(message.body)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("dropping a malformed tick on %s: %s", self.ticks_queue, exc)
            await self._ack(message)
            return
        job = self._jobs.get(tick.job)
        if job is None:
            log.error("tick %s names no job of this service; dropped", tick.id)
            await self._ack(message)
            return
        while (claim := await asyncio.to_thread(self.ledger.claim, tick.id, self.owner, self.lease)) == "busy":
            # Another replica is running it: wait until it is done, or its claim lapses.
            await asyncio.sleep(self.lease.total_seconds() / 3)
        if claim == "done":
            self.stats.duplicates += 1
            log.info("tick %s ran before; skipped", tick.id)
            await self._ack(message)
            return
        renewing = asyncio.create_task(self._renew(tick.id))
        try:
            await self._call(job, tick)
        except asyncio.CancelledError:
            raise  # shutting down: unacked, it runs again elsewhere once the claim lapses
        except Exception:
            self.stats.failed += 1
            log.exception("job %s failed on tick %s; the next tick runs it again", tick.job, tick.id)
            await asyncio.to_thread(self.ledger.release, tick.id, self.owner)
            await self._ack(message)
            return
        finally:
            renewing.cancel()
        await asyncio.to_thread(self.ledger.complete, tick.id, self.owner)
        self.stats.ran += 1
        await self._ack(message)

    async def _renew(self, identifier: str) -> None:
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            try:
                await asyncio.to_thread(self.ledger.renew, identifier, self.owner)
            except Exception as exc:  # the database blipped: the next renewal may work
                log.warning("could not renew the claim on %s: %s", identifier, exc)

    # -- leading ---------------------------------------------------------------------------------

    async def _fire(self, job: ScheduledJob, scheduled_at: datetime) -> None:
        identifier = tick_id(job.name, scheduled_at)
        body = orjson.dumps(
            {"id": identifier, "job": job.name, "scheduled_at": scheduled_at.isoformat(), "trigger": "schedule"}
        )
        properties = Properties(
            message_id=identifier,
            content_type="application/json",
            delivery_mode=2,
            headers={"eventbus-tick": identifier},
            app_id=self.settings.source,
        )
        # through the lock: a leader that lost it cannot fire; unconfirmed in time, _lead competes again
        (error,) = await self._lock.publish([("", self.ticks_queue, properties, body)])
        if error is not None:
            raise error
        self.stats.fired += 1
        log.info("fired %s", identifier)

    async def _lead_once(self) -> None:
        """Be leader until the lock is lost or the scheduler stops (``start`` declared the ticks queue)."""
        last_fired: dict[str, datetime] = {}
        while self._lock.held and not self._stopped.is_set():
            now = self._clock.utcnow()
            for job in self._jobs.values():
                latest = job.schedule.latest_at_or_before(now)
                previous = last_fired.get(job.name)
                if previous is not None and latest <= previous:
                    continue
                last_fired[job.name] = latest
                if due_tick(job.schedule, now, last_fired=previous, misfire_grace=job.misfire_grace) is None:
                    self.stats.missed += 1
                    log.info("tick %s is older than its misfire grace; skipped", tick_id(job.name, latest))
                    continue
                await self._fire(job, latest)
            following = min(job.schedule.next_after(now) for job in self._jobs.values())
            delay = max(0.0, min(60.0, (following - self._clock.utcnow()).total_seconds()))
            await self._lock.wait_lost(delay)

    async def _lead(self) -> None:
        while not self._stopped.is_set():
            await self._lock.acquire(self.lock_retry)
            log.info("%s is the scheduler leader", self.settings.service)
            failed = False
            try:
                await self._lead_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # lost connection, closed channel: release and compete again
                log.warning("scheduler leader stopped leading: %s: %s", type(exc).__name__, exc)
                failed = True
            finally:
                await self._lock.release()
            if failed:
                await self._clock.sleep(self.lock_retry)

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start consuming ticks and competing for leadership (returns once consuming)."""
        if not self._jobs:
            return
        self._stopped.clear()
        await self._consume()
        self._tasks.append(asyncio.create_task(self._keep_consuming(), name=f"{self.settings.service}:scheduler-ticks"))
        self._tasks.append(asyncio.create_task(self._lead(), name=f"{self.settings.service}:scheduler-leader"))

    async def _consume(self) -> None:
        """Open a ticks session: declare the queue and take ticks one at a time."""
        self._session = await self._transport.consume([self._ticks], {self.ticks_queue: self._on_delivery}, 1)

    async def _keep_consuming(self) -> None:
        """When the ticks session is lost, open a new one (with backoff) and consume again."""
        failures = 0
        while not self._stopped.is_set():
            if self._session is not None and not self._session.closed.done():
                await asyncio.shield(self._session.closed)
                if self._stopped.is_set():
                    return
                log.warning("lost the scheduler's ticks session; reconnecting")
            try:
                await self._consume()
            except (ConnectionFailedError, *CONNECTION_ERRORS) as exc:
                failures += 1
                delay = _RECONNECT.delay(failures)
                log.warning("scheduler reconnect attempt %d failed (%s); next in %.1fs", failures, exc, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0

    async def stop(self, grace: float = 30.0) -> None:
        """Stop leading and taking ticks; a job in progress gets ``grace`` seconds to finish.

        A job still running after that is cancelled; its tick stays unacknowledged and runs
        again on another replica once this one's claim lapses.
        """
        self._stopped.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self._lock.release()
        session = self._session
        if session is not None:
            with contextlib.suppress(Exception):
                await session.cancel()
        if self._in_flight:
            _, pending = await asyncio.wait(set(self._in_flight), timeout=grace)
            for task in pending:
                task.cancel()
        if session is not None:
            with contextlib.suppress(Exception):
                await session.close()
            self._session = None
        if self._owns_transport:
            with contextlib.suppress(Exception):
                await self._transport.close()

    async def run(self) -> None:
        await self.start()
        await self._stopped.wait()

    def describe(self) -> list[dict[str, Any]]:
        """Each job's name, cron, time zone and next scheduled time (for CLIs and health pages)."""
        now = self._clock.utcnow()
        return [
            {
                "name": job.name,
                "cron": job.schedule.expression,
                "timezone": job.schedule.timezone,
                "next": format_time(job.schedule.next_after(now)),
            }
            for job in self._jobs.values()
        ]
