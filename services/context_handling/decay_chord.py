"""The daily decay recompute as a chord over shards of pairs (docs/workflows.md, the canvas).

    scheduler tick (one replica) ─► bus.start(chord(group(decay_shard.si(shard=i, of=N, midnight=M)
                                                          for i in range(N)),
                                                    decay_done.s(midnight=M)))
    decay_shard (any replica)    ─► lower_decayed(shard i of N) → ShardReport (counts)
    workflow engine (Redis)      ─► all N reports in, exactly once ─► decay_done(midnight, results)
    decay_done (any replica)     ─► DecayReport totals; candidate caches rebuilt; logged, counted
    decay_failed (on_error)      ─► a shard parked for good: logged and counted; no decay_done

Why a chord: the shards are independent (``decay.py``), so the replicas share the work instead of
the scheduler's leader doing all of it, and a failing shard is retried alone (its task's retries) or
parked with the workflow failed (``eventbus workflow show|retry``) without redoing the others. The
callback runs once, after every shard has committed, which is when the candidate caches can be
rebuilt from the final statuses: rebuilt by the shards themselves, a user with pairs in two shards
could be ranked by one shard before the other shard's changes.

The workflow id is derived from the tick (service, job, midnight), so a tick the scheduler runs
again after a crash starts the same workflow: the same step ids, each member counted once by the
engine, the callback fired once. Every shard is idempotent anyway (decay lowers a status once).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from eventbus import EventBus, EventContract, chord, group, tick_id
from eventbus.workflows import Chord, WorkflowFailed

from .cache import CandidateCache
from .decay import DECAY_JOB, DecayReport, lower_decayed, report_from_counts
from .jobs import rebuild_candidate_caches
from .storage import Storage

__all__ = ["CACHE_MARGIN", "SHARD_REPORT", "DecayChord", "ShardReport"]

log = logging.getLogger("context_handling.decay")

# The callback rebuilds the caches of users with a pair written since midnight minus this: the shards
# write after the tick's midnight on their replica's clock; the margin covers clocks a little apart.
CACHE_MARGIN = timedelta(hours=1)
_WORKFLOW_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://eventbus.dev/context-handling/workflows")


class ShardReport(BaseModel):
    """What one shard of the decay recompute did: the result of a ``decay_shard`` step."""

    model_config = ConfigDict(extra="forbid")

    shard: int = Field(ge=0, description="This shard's number, 0 … of-1.")
    of: int = Field(ge=1, description="How many shards the recompute has.")
    examined: int = Field(ge=0, description="Pairs above stranger with T_ref before the midnight.")
    lowered: dict[str, int] = Field(description="Pairs lowered, by their new status.")


def _schema() -> dict[str, Any]:
    schema = ShardReport.model_json_schema()
    schema["$id"] = "https://eventbus.dev/context-handling/decay_shard_report.v1.json"
    return schema


SHARD_REPORT: EventContract[ShardReport] = EventContract(
    type="context.decay.shard_report.v1",
    exchange="context",
    model=ShardReport,
    schema=_schema(),
    owner="context-handling",
)
"""The contract of a shard's result (never published alone: it travels to the callback inside the join)."""


class DecayChord:
    """The two tasks of the sharded recompute on ``bus``, and the canvas that runs them."""

    def __init__(
        self,
        bus: EventBus,
        storage: Storage,
        cache: CandidateCache,
        *,
        shards: int,
        record: Callable[[DecayReport], None],
        failed: Callable[[WorkflowFailed], None] = lambda failure: None,
        wake: Callable[[], None] = lambda: None,
        chunk: int = 1000,
    ) -> None:
        if shards < 1:
            raise ValueError(f"the decay recompute needs at least one shard, got {shards}")
        self.bus = bus
        self.storage = storage
        self.cache = cache
        self.shards = shards
        self.chunk = chunk
        self._record = record
        self._failed = failed
        self._wake = wake
        self.shard_task = bus.task(name="decay_shard")(self.decay_shard)
        self.done_task = bus.task(name="decay_done")(self.decay_done)
        self.failed_task = bus.task(name="decay_failed")(self.decay_failed)

    def workflow_id(self, midnight: datetime) -> str:
        """One workflow per service and midnight (see the module docstring)."""
        return str(uuid.uuid5(_WORKFLOW_NAMESPACE, f"{self.bus.settings.service}/{tick_id(DECAY_JOB, midnight)}"))

    def canvas(self, midnight: datetime) -> Chord:
        members = group(self.shard_task.si(shard=i, of=self.shards, midnight=midnight) for i in range(self.shards))
        return chord(members, self.done_task.s(midnight=midnight))

    async def start(self, midnight: datetime) -> str:
        """Start the recompute as of ``midnight``; returns the workflow id (the work happens on the workers)."""
        workflow_id = await self.bus.start(
            self.canvas(midnight),
            on_error=self.failed_task.s(midnight=midnight),
            workflow_id=self.workflow_id(midnight),
        )
        log.info("decay recompute as of %s: started %d shards (workflow %s)", midnight, self.shards, workflow_id)
        return workflow_id

    # -- the tasks ---------------------------------------------------------------------------------

    async def decay_shard(self, shard: int, of: int, midnight: datetime) -> ShardReport:
        """Lower the decayed pairs of one shard of the recompute.

        Args:
            shard: This shard's number, 0 … of-1.
            of: How many shards the recompute has.
            midnight: The midnight the statuses are recomputed as of.
        """
        report, _touched = await asyncio.to_thread(
            lower_decayed, self.storage, midnight, shard=shard, of=of, chunk=self.chunk
        )
        self._wake()
        lowered = {status.value: n for status, n in report.lowered.items() if n}
        return ShardReport(shard=shard, of=of, examined=report.examined, lowered=lowered)

    async def decay_done(self, midnight: datetime, results: list[ShardReport]) -> None:
        """Add up the shards' reports, rebuild the candidate caches, record the recompute.

        Args:
            midnight: The midnight the statuses were recomputed as of.
            results: The shards' reports, in shard order.
        """
        shards = sorted(r.shard for r in results)
        if shards != list(range(len(results))) or any(r.of != len(results) for r in results):
            raise ValueError(f"the shard reports do not cover the shards once each: {shards}")
        report = DecayReport.total(midnight, (report_from_counts(midnight, r.examined, r.lowered) for r in results))

        def rebuild() -> int:
            with self.storage.engine.connect() as connection:
                users = self.storage.users_changed_since(connection, midnight - CACHE_MARGIN)
            return rebuild_candidate_caches(self.storage, self.cache, users)

        rebuilt = await asyncio.to_thread(rebuild) if sum(report.lowered.values()) else 0
        log.info("decay recompute %s (%d shards, %d candidate caches rebuilt)", report, len(results), rebuilt)
        self._record(report)

    async def decay_failed(self, midnight: datetime, failure: WorkflowFailed) -> None:
        """A shard failed for good (parked): the recompute stops short of its callback; say so loudly.

        Args:
            midnight: The midnight the statuses were being recomputed as of.
            failure: The workflow.failed report: the failed step, its error and the queue it is parked in.
        """
        log.error(
            "decay recompute as of %s failed: step %s (%s: %s), parked in %s; the other shards' changes stand. "
            "Fix the cause, then 'eventbus workflow retry %s' runs the step again and the recompute completes",
            midnight,
            failure.step,
            failure.error_type,
            failure.error,
            failure.queue,
            failure.workflow_id,
        )
        self._failed(failure)
