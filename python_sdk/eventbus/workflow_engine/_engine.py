"""The workflow engine: consumes the reports, joins chords exactly once, tracks every workflow.

``WorkflowEngine(bus, redis_url)`` subscribes ``bus`` to the quorum queue ``eventbus.workflow.engine``
(bound ``#`` on ``eventbus.workflow``, with its ``.dlq``), so ``eventbus worker app:bus`` runs it
beside the bus's own handlers and any number of engine processes compete on the queue. Every
decision is one Lua script in Redis (``_store.py``); this module only decodes reports and publishes
what a fired join yields.

A join fires once: the report that finds all ``size`` results stored takes a short lease, loads
the results in index order, publishes ``advance(next, results, on_error)`` (confirmed; the callback's
id is its deterministic step id), marks the join fired and only then acks. A report that finds the
lease taken waits for it to be released or to expire (its holder died: that holder's own report is
redelivered too), so a fire is never lost; only an engine that stalls longer than the lease while
publishing can publish the same callback id twice, which an inbox downstream drops.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson

from .._async_bus import EventBus
from .._contract import EventContract, known_contract
from .._exceptions import ConfigurationError
from .._outgoing import OutgoingMessage, build_outgoing
from .._retry import ExponentialBackoff, RetryPolicy
from ..workflows._forward import STEP_RESULT_ERRORS, step_messages
from ..workflows._reports import (
    ENGINE_QUEUE,
    FAILED,
    StepCompleted,
    WorkflowCancelled,
    WorkflowFailed,
    WorkflowStarted,
)
from ..workflows._slip import STEP_HEADER, Join, advance, frame_from_json, report_id, step_event_id
from ._store import DEFAULT_TTL, RedisStore, WorkflowStore

__all__ = ["ENGINE_RETRY", "REPORT_BODY_LIMIT", "WorkflowEngine", "step_ids"]

REPORT_BODY_LIMIT = 16 << 20
ENGINE_RETRY = RetryPolicy(max_attempts=25, backoff=ExponentialBackoff(first=1.0, factor=2.0, maximum=120.0))
"""A report the engine cannot handle (Redis down) is retried for about 40 minutes before it is parked
in ``eventbus.workflow.engine.dlq`` (replay it from there: every decision is idempotent)."""

log = logging.getLogger("eventbus.workflows")


def step_ids(plan: Any) -> Iterator[str]:
    """Every step id in a plan tree (any nesting of lists and objects; a step is an object with ``step``)."""
    if isinstance(plan, list):
        for item in plan:
            yield from step_ids(item)
    elif isinstance(plan, dict):
        step = plan.get("step")
        if isinstance(step, str):
            yield step
        for key, value in plan.items():
            if key != "args" and isinstance(value, (list, dict)):
                yield from step_ids(value)


def _epoch(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class WorkflowEngine:
    """Runs on ``bus``'s worker: chord joins and tracking in the Redis at ``redis_url``.

    ``ttl`` (seconds, default 7 days) is the expiry of every key, renewed on every write; ``prefix``
    the key prefix (``revoked_prefix``, default ``<prefix>revoked:``, must be the revocation store's,
    ``eventbus:revoked:`` on the wire, so that a cancelled workflow's joins never fire); ``lease``
    (seconds) how long a firing engine holds a join before another may fire it; ``contracts`` the
    contracts of callback steps that are not among the bus's own subscriptions and tasks; ``store``
    another store than Redis (``eventbus.testing.memory_workflows(broker)``); ``retry`` the retry
    policy of a report the engine could not handle (``ENGINE_RETRY``: about 40 minutes).
    """

    def __init__(self, bus: EventBus, redis_url: str | None = None, *, ttl: int = DEFAULT_TTL,
                 prefix: str = "eventbus:", lease: float = 30.0, contracts: Iterable[EventContract[Any]] = (),
                 client: Any = None, revoked_prefix: str | None = None, store: WorkflowStore | None = None,
                 retry: RetryPolicy = ENGINE_RETRY) -> None:
        if not isinstance(bus, EventBus):
            raise ConfigurationError(f"WorkflowEngine runs on an asyncio EventBus, got {type(bus).__name__} "
                                     "(a worker for the engine can be a bus of its own: eventbus worker app:bus)")
        self.bus = bus
        if store is None:
            if redis_url is None:
                raise ConfigurationError("WorkflowEngine needs redis_url (or store=, e.g. eventbus.testing's)")
            store = RedisStore(redis_url, prefix=prefix, ttl=ttl, client=client, revoked_prefix=revoked_prefix)
        self.store = store
        self.lease_ms = max(1, int(lease * 1000))
        self._extra = {c.type: c for c in contracts}
        self.fired = 0  # joins this process fired (for tests and metrics)
        # A started report carries the whole plan (about 1 MB for a chord of 10 000): the engine reads
        # reports up to 16 MiB whatever the bus's own limit (docs/wire-format.md, Reports and the engine).
        limits = dataclasses.replace(bus.settings.limits,
                                     max_body_bytes=max(bus.settings.limits.max_body_bytes, REPORT_BODY_LIMIT))
        for model, handler in ((WorkflowStarted, self.on_started), (StepCompleted, self.on_completed),
                               (WorkflowFailed, self.on_failed), (WorkflowCancelled, self.on_cancelled)):
            bus.subscribe(model, queue=ENGINE_QUEUE, binding_keys=("#",), limits=limits, retry=retry)(handler)
        bus.on_shutdown(self.close)

    async def close(self) -> None:
        await self.store.close()

    def contract(self, event_type: str) -> EventContract[Any] | None:
        """The contract of a step type: ``contracts=``, the bus's subscriptions and tasks, then any
        contract made in this process."""
        if event_type in self._extra:
            return self._extra[event_type]
        for subscription in self.bus.subscriptions:
            if subscription.contract.type == event_type:
                return subscription.contract
        for task in self.bus.tasks:
            if task.contract.type == event_type:
                return task.contract
        return known_contract(event_type)  # any contract made in this process (generated, a task's)

    # -- the four reports -----------------------------------------------------------------------------

    async def on_started(self, report: WorkflowStarted) -> None:
        steps = list(dict.fromkeys(step_ids(report.plan)))
        await self.store.started(report.workflow_id, plan=report.plan, on_error=report.on_error,
                                 started_at=_epoch(report.started_at), steps=steps)

    async def on_completed(self, report: StepCompleted) -> None:
        record = {"state": "completed", "type": report.type, "attempt": report.attempt,
                  "started_at": _epoch(report.started_at), "finished_at": _epoch(report.finished_at),
                  "result_type": report.result_type}
        tracked = self.store.completed(report.workflow_id, report.step, record)
        if report.join is None:
            await tracked
            return
        join = report.join
        frame = frame_from_json({"join": join.group, "index": join.index, "size": join.size})
        next_frames = tuple(frame_from_json(f) for f in join.next)
        on_error = tuple(frame_from_json(f) for f in join.on_error)
        counted = self._count(report.workflow_id, Join(frame, join.result, next_frames, on_error))  # type: ignore[arg-type]
        # Side by side, so that both scripts reach Redis in one round trip (the store pipelines them);
        # both are idempotent, so a failure of either hands the report back for both to run again.
        await asyncio.gather(tracked, counted)

    async def on_failed(self, report: WorkflowFailed) -> None:
        record = {"state": "failed", "type": report.type, "attempt": report.attempt,
                  "message_id": report.message_id, "reason": report.reason, "error_type": report.error_type,
                  "error": report.error, "queue": report.queue, "failed_at": _epoch(report.failed_at)}
        await self.store.failed(report.workflow_id, report.step, record, _epoch(report.failed_at))

    async def on_cancelled(self, report: WorkflowCancelled) -> None:
        await self.store.cancelled(report.workflow_id, _epoch(report.cancelled_at))

    # -- joins ------------------------------------------------------------------------------------------

    async def _count(self, workflow_id: str, join: Join) -> None:
        """Count one member; fire the join when this call completes it (exactly once, see the module)."""
        frame = join.frame
        token = uuid.uuid4().hex
        result = orjson.dumps(join.result)
        while True:
            outcome = await self.store.count(workflow_id, frame.join, frame.index, frame.size, result,
                                             token=token, lease_ms=self.lease_ms)
            if outcome.outcome != "busy":
                break
            # Another engine is firing (or died firing: its own report comes back once the lease expires).
            await asyncio.sleep(min(max(outcome.lease_ms, 10) / 1000, 0.5))
        if outcome.outcome == "revoked":
            log.info("workflow %s is cancelled: join %s member %d dropped", workflow_id, frame.join, frame.index)
            return
        if outcome.outcome != "fire":
            return
        try:
            await self._fire(workflow_id, join, token, outcome.counted)
        except BaseException:
            await asyncio.shield(self.store.release(workflow_id, frame.join, token))
            raise

    async def _fire(self, workflow_id: str, join: Join, token: str, counted: int) -> None:
        frame = join.frame
        results = await self.store.results(workflow_id, frame.join, frame.size)
        source = self.bus.settings.source
        try:
            actions = advance(join.next, results, join.on_error)
            messages, inner = step_messages(actions, workflow_id=workflow_id, contracts=self.contract,
                                            source=source)
        except STEP_RESULT_ERRORS as exc:
            messages, inner = self._failure(workflow_id, join, exc), None
        if messages:
            await self.bus._publisher.publish_messages(messages, ticks=None, window=self.bus.settings.publish_window)
        if inner is not None:  # the join's next frame is an outer join (a group of groups): count into it
            await self._count(workflow_id, inner)
        callbacks = [str(m.headers.get(STEP_HEADER)) for m in messages if m.headers and STEP_HEADER in m.headers]
        await self.store.mark_fired(workflow_id, frame.join, token=token, size=frame.size, counted=counted,
                                    callbacks=callbacks)
        self.fired += 1
        log.info("workflow %s: join %s fired with %d results (%d messages)", workflow_id, frame.join,
                 frame.size, len(messages))

    def _failure(self, workflow_id: str, join: Join, exc: Exception) -> list[OutgoingMessage]:
        """The join's results do not make its next step: the workflow fails there (no parked message)."""
        first = join.next[0] if join.next else None
        step = getattr(first, "step", f"{join.frame.join}.join")
        event_type = getattr(first, "type", "")
        failure = WorkflowFailed(
            workflow_id=workflow_id, step=step, type=event_type, message_id=step_event_id(workflow_id, step),
            attempt=1, reason=getattr(exc, "reason", "workflow_result_invalid"), error_type=type(exc).__name__,
            error=str(exc), queue="", failed_at=datetime.now(UTC),
        )
        source = self.bus.settings.source
        report = build_outgoing(failure, source=source, contract=FAILED,
                                event_id=report_id(workflow_id, step, "failed"))
        try:
            data = failure.model_dump(mode="json")
            on_error, _ = step_messages(advance(join.on_error, data, ()), workflow_id=workflow_id,
                                        contracts=self.contract, source=source)
        except STEP_RESULT_ERRORS:
            log.exception("workflow %s: the on_error step cannot take the failure", workflow_id)
            on_error = []
        return [report, *on_error]
