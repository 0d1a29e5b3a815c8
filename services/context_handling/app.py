"""The service assembled: bus, batch writer, outbox relay, scheduler, cache, health endpoint.

    chat.conversation.ended.v1 ──► handler ──► batcher ──► processor (one transaction)
                                                                │ commit, then ack
                                   outbox relay ◄── outbox rows ┘
                                        │ confirmed publishes, deterministic ids
                                        ▼
             context.friendship.status_changed.v1 · context.candidates.updated.v1

``create_service()`` builds one from the environment; ``service.bus`` is the SDK bus with the
handler registered, for a generic worker that runs buses (it must also call ``service.start()``
and ``service.stop()`` so the relay, the scheduler and the health endpoint run with it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from eventbus import (
    EventBus,
    EventContext,
    OutboxRelay,
    ParkMessage,
    Scheduler,
    Tick,
    create_sql_engine,
    run_transaction,
)
from eventbus.workflow_engine import WorkflowEngine
from eventbus_contracts import ConversationEndedV1

from . import jobs
from .batcher import Batcher, Submitted
from .cache import open_cache
from .decay_chord import DecayChord
from .observability import HealthServer, SampledCollector, ServiceMetrics, counter, gauge
from .processor import BatchResult, ConversationProcessor, Incoming, Outcome
from .settings import ServiceSettings
from .storage import Storage

__all__ = ["ContextHandlingService", "InvalidConversationError", "create_service"]

log = logging.getLogger("context_handling")


class InvalidConversationError(ParkMessage):
    """Parks a conversation whose data cannot be scored, with the reason in the DLQ headers."""

    def __init__(self, detail: str) -> None:
        super().__init__("invalid_conversation")
        self.detail = detail

    def __str__(self) -> str:
        return self.detail


class ContextHandlingService:
    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.engine = create_sql_engine(settings.database_url)
        self.storage = Storage(self.engine, service=settings.service)
        self.cache = open_cache(settings.redis_url, prefix=settings.cache_prefix, ttl=settings.candidates_ttl)
        self.metrics = ServiceMetrics()
        self.bus = EventBus(settings.bus)
        self.processor = ConversationProcessor(self.storage, self.cache)
        self.batcher = Batcher(
            self.processor.apply,
            max_batch=settings.batch_max,
            on_batch=self._after_batch,
            after_commit=self.processor.refresh_cache,
        )
        self.relay = OutboxRelay(
            self.engine,
            self.storage.outbox,
            self.bus,
            batch_size=settings.relay_batch,
            lease=timedelta(seconds=settings.outbox_lease),
        )
        self.scheduler = Scheduler(
            settings.bus,
            timezone=settings.timezone,
            ledger=self.storage.ticks,
            lock_retry=settings.scheduler_lock_retry,
        )
        self.scheduler.job(settings.decay_cron, name=jobs.DECAY_JOB, misfire_grace=None)(self._decay_job)
        self.scheduler.job(settings.fallback_cron, name=jobs.FALLBACK_JOB)(self._fallback_job)
        self.bus.subscribe(ConversationEndedV1)(self.on_conversation_ended)
        # The daily recompute as a chord of shards on the replicas when there is Redis for the joins.
        self.decay_chord: DecayChord | None = None
        self.workflow_engine: WorkflowEngine | None = None
        self.last_decay: jobs.DecayReport | None = None
        if settings.decay_as_chord:
            assert settings.redis_url is not None
            self.decay_chord = DecayChord(
                self.bus,
                self.storage,
                self.cache,
                shards=settings.decay_shards,
                record=self._record_decay,
                failed=lambda failure: self.metrics.decay_failed.inc(),
                wake=self.relay.wake,
            )
            if settings.workflow_engine:
                self.workflow_engine = WorkflowEngine(self.bus, settings.redis_url, prefix=settings.workflow_prefix)
        self.metrics.watch(SampledCollector(self._sample_database))
        self.metrics.watch(SampledCollector(self._sample_runtime, max_age=0.0))
        self.http: HealthServer | None = None
        # Totals and recent latencies of this process, for the demo's summary and the benchmark.
        self.totals: Counter[str] = Counter()
        self.latencies: deque[float] = deque(maxlen=200_000)
        self._observers: list[Callable[[Sequence[Incoming], Sequence[Submitted]], None]] = []
        self._relay_task: asyncio.Task[None] | None = None
        self._consuming = False
        self._stopped = asyncio.Event()

    # -- the handler -----------------------------------------------------------------------------

    async def on_conversation_ended(self, event: ConversationEndedV1, ctx: EventContext) -> None:
        if ctx.redelivered or ctx.attempt > 1:
            self.metrics.retried.inc()
        try:
            submitted = await self.batcher.submit(Incoming(ctx.id, event))
        except Exception as exc:
            self.metrics.consumed.labels("failed").inc()
            self.metrics.parked.labels(type(exc).__name__).inc()
            raise
        self.metrics.consumed.labels(submitted.outcome.value).inc()
        if submitted.outcome is Outcome.rejected:
            self.metrics.parked.labels("invalid_conversation").inc()
            raise InvalidConversationError(str(submitted.error))

    def watch(self, observer: Callable[[Sequence[Incoming], Sequence[Submitted]], None]) -> None:
        """Call ``observer(events, outcomes)`` after each committed batch (the demo counts its own events)."""
        self._observers.append(observer)

    def _after_batch(self, items: Sequence[Incoming], result: BatchResult, submitted: Sequence[Submitted]) -> None:
        for observer in self._observers:
            observer(items, submitted)
        self.metrics.batch_size.observe(len(submitted))
        for item in submitted:
            self.metrics.latency.observe(item.latency)
            self.latencies.append(item.latency)
            self.totals[item.outcome.value] += 1
        self.totals["status_changes"] += result.status_changes
        self.totals["derived_events"] += result.derived_events
        if result.derived_events:
            self.metrics.derived.labels("context.friendship.status_changed.v1").inc(result.status_changes)
            self.metrics.derived.labels("context.candidates.updated.v1").inc(
                result.derived_events - result.status_changes
            )
            self.relay.wake()

    # -- jobs ------------------------------------------------------------------------------------

    async def _decay_job(self, tick: Tick) -> jobs.DecayReport | str:
        """The recompute in this process (its report), or started as a chord of shards (its workflow id)."""
        if self.decay_chord is not None:
            return await self.decay_chord.start(tick.scheduled_at)
        report = await asyncio.to_thread(jobs.decay_recompute, self.storage, self.cache, tick.scheduled_at)
        self.relay.wake()
        self._record_decay(report)
        return report

    def _record_decay(self, report: jobs.DecayReport) -> None:
        self.last_decay = report
        self.metrics.decay_examined.inc(report.examined)
        for status, n in report.lowered.items():
            self.metrics.decay_lowered.labels(status.value).inc(n)

    async def _fallback_job(self, tick: Tick) -> jobs.FallbackReport:
        stale = await asyncio.to_thread(jobs.stale_cache_users, self.storage, self.cache)
        await asyncio.to_thread(jobs.rebuild_candidate_caches, self.storage, self.cache, stale)
        redriven, kept = await jobs.redrive_transient(self.settings.bus)
        purged = await asyncio.to_thread(jobs.purge_published, self.storage)
        return jobs.FallbackReport(caches_rebuilt=len(stale), redriven=redriven, kept_parked=kept, outbox_purged=purged)

    async def run_job(self, name: str, *, at: datetime | None = None) -> Any:
        """Run a job now in this process (the CLI's ``job`` command); returns its report."""
        job = self.scheduler.jobs.get(name)
        if job is None:
            known = ", ".join(sorted(self.scheduler.jobs))
            raise KeyError(f"no job named {name!r} (jobs: {known})")
        moment = at or job.schedule.latest_at_or_before(datetime.now(UTC))
        tick = Tick(id=f"job:{name}:manual", job=name, scheduled_at=moment, trigger="manual")
        return await job.function(tick)  # type: ignore[misc]

    # -- metrics and health ----------------------------------------------------------------------

    def _sample_database(self) -> Iterable[Any]:
        def read(connection: sa.Connection) -> tuple[int, dict[Any, int]]:
            return self.storage.outbox.pending_count(connection), self.storage.counts_by_status(connection)

        backlog, counts = run_transaction(self.engine, read)
        yield gauge("context_outbox_backlog", "Derived events not yet published.", {(): backlog}, [])
        yield gauge(
            "context_pairs", "Pairs by friendship status.", {(s.value,): n for s, n in counts.items()}, ["status"]
        )

    def _sample_runtime(self) -> Iterable[Any]:
        relay, ticks = self.relay.stats, self.scheduler.stats
        yield counter(
            "context_outbox_relayed",
            "Outbox rows handled by this process's relay, by result.",
            {("published",): relay.published, ("unroutable",): relay.unroutable, ("failed",): relay.failed},
            ["result"],
        )
        yield counter(
            "context_scheduler_ticks",
            "Scheduler ticks seen by this replica, by what happened.",
            {
                ("fired",): ticks.fired,
                ("ran",): ticks.ran,
                ("duplicate",): ticks.duplicates,
                ("failed",): ticks.failed,
                ("missed",): ticks.missed,
            },
            ["event"],
        )
        yield gauge(
            "context_scheduler_leader",
            "1 while this replica fires the ticks.",
            {(): float(self.scheduler.is_leader)},
            [],
        )

    def alive(self) -> tuple[bool, str]:
        if not self.batcher.running:
            return False, "the batch writer is not running"
        if self.settings.relay and (self._relay_task is None or self._relay_task.done()):
            return False, "the outbox relay is not running"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        if not self._consuming:
            return False, "not consuming"
        try:
            with self.engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except Exception as exc:
            return False, f"database unavailable: {type(exc).__name__}"
        return True, "ready"

    # -- lifecycle -------------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Create or migrate the schema and start the writer and the relay (no consuming yet)."""
        await asyncio.to_thread(self.storage.migrate)
        self.batcher.start()
        if self.settings.relay and self._relay_task is None:
            self._relay_task = asyncio.create_task(self.relay.run(), name="context-handling:relay")

    async def start(self) -> None:
        """Everything :meth:`prepare` does, plus consuming, the scheduler and the HTTP endpoint."""
        await self._start_besides_bus()
        await self.bus.start()
        self._consuming = True
        log.info(
            "context-handling consuming %s (database %s, cache %s)",
            ConversationEndedV1.__name__,
            self.engine.url.render_as_string(hide_password=True),
            self.cache.description,
        )

    async def _start_besides_bus(self) -> None:
        await self.prepare()
        if self.settings.http is not None and self.http is None:
            self.http = HealthServer(self.settings.http, self.metrics, alive=self.alive, ready=self.ready)
            self.http.start()
            log.info("health and metrics on %s", self.http.url)
        if self.settings.scheduler:
            await self.scheduler.start()

    def worker_bus(self) -> EventBus:
        """The bus, with the rest of the service started and stopped around it (``eventbus worker``)."""

        async def started() -> None:
            await self._start_besides_bus()
            self._consuming = True

        async def stopping() -> None:
            self._consuming = False
            await self._stop_besides_bus(drain_outbox=5.0)

        self.bus.on_startup(started)
        self.bus.on_shutdown(stopping)
        return self.bus

    async def stop(self, grace: float = 30.0, *, drain_outbox: float = 5.0) -> None:
        """Stop taking events, finish the batch in hand, publish what is pending (briefly), close."""
        self._consuming = False
        await self.scheduler.stop()
        await self.bus.stop(grace)
        await self._stop_besides_bus(drain_outbox)
        await self.bus.close()
        self._stopped.set()

    async def _stop_besides_bus(self, drain_outbox: float) -> None:
        await self.scheduler.stop()
        await self.batcher.stop()
        if self._relay_task is not None:
            self.relay.stop()
            with contextlib.suppress(Exception):
                await self._relay_task
            self._relay_task = None
            if drain_outbox > 0 and self.settings.relay:
                with contextlib.suppress(Exception):
                    await self.relay.drain(timeout=drain_outbox)
        if self.http is not None:
            self.http.stop()
            self.http = None
        await asyncio.to_thread(self.cache.close)
        self.engine.dispose()

    async def run_relay(self, stop: asyncio.Event) -> None:
        """Only the outbox relay, until ``stop`` is set (``context-handling relay``).

        For running the relay in a process of its own next to consumers started with
        ``CONTEXT_RELAY=off``: on a busy machine the consumer's event loop is then free for
        consuming, and the relay gets a core of its own. Several relays share the rows safely
        (claims are leases taken with ``SKIP LOCKED``).
        """
        await asyncio.to_thread(self.storage.migrate)
        task = asyncio.create_task(self.relay.run(), name="context-handling:relay")
        try:
            await stop.wait()
        finally:
            self.relay.stop()
            with contextlib.suppress(Exception):
                await task
            await self.bus.close()
            self.engine.dispose()

    async def run(self) -> None:
        """Start and serve until :meth:`stop` is called (e.g. from a signal handler)."""
        self._stopped.clear()
        await self.start()
        await self._stopped.wait()


def create_service(settings: ServiceSettings | None = None) -> ContextHandlingService:
    """The service configured from the environment (see ``settings``), not yet started."""
    return ContextHandlingService(settings or ServiceSettings.from_env())
