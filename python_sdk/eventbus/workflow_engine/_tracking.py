"""Reading and operating tracked workflows: ``Workflows(redis_url).list() / show(id) / retry(id)``.

What the engine recorded (``_store.py``) as plain dataclasses, and the one operation that writes:
``retry`` replays the failed step's parked message from the DLQ its ``failed`` report named (by
message id, through the SDK's confirmed DLQ replay) and marks the workflow running again; the
replayed step runs with its slip, so the workflow resumes where it failed.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .._dead_letters import DeadLetters
from .._exceptions import ConfigurationError
from .._settings import BusSettings
from ._engine import step_ids
from ._store import DEFAULT_TTL, RedisStore, WorkflowStore

__all__ = ["JoinView", "StepView", "WorkflowSummary", "WorkflowView", "Workflows"]


def _time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    return datetime.fromtimestamp(float(value), UTC)


@dataclass(frozen=True, slots=True)
class WorkflowSummary:
    """One line of ``eventbus workflow list``."""

    id: str
    state: str
    started_at: datetime | None
    finished_at: datetime | None
    steps: int | None  # steps in the plan (None before the started report arrived)
    completed: int
    failed_step: str | None


@dataclass(frozen=True, slots=True)
class StepView:
    """A step as its reports left it; ``state`` is pending when no report came yet."""

    step: str
    state: str
    type: str | None = None
    attempt: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result_type: str | None = None
    error_type: str | None = None
    error: str | None = None
    reason: str | None = None
    queue: str | None = None
    message_id: str | None = None

    @classmethod
    def of(cls, step: str, record: dict[str, Any] | None) -> StepView:
        if record is None:
            return cls(step, "pending")
        return cls(step, str(record.get("state", "pending")), record.get("type"), record.get("attempt"),
                   _time(record.get("started_at")), _time(record.get("finished_at") or record.get("failed_at")),
                   record.get("result_type"), record.get("error_type"), record.get("error"), record.get("reason"),
                   record.get("queue"), record.get("message_id"))


@dataclass(frozen=True, slots=True)
class JoinView:
    """A chord join that fired: how many results it counted, when, and the steps it published."""

    group: str
    size: int
    counted: int
    fired_at: datetime | None
    callbacks: list[str]


@dataclass(frozen=True, slots=True)
class WorkflowView:
    """``show(id)``: the plan tree with each step's state (``steps`` also holds on_error steps)."""

    id: str
    state: str
    started_at: datetime | None
    finished_at: datetime | None
    plan: Any
    on_error: Any
    steps: dict[str, StepView] = field(default_factory=dict)
    joins: dict[str, JoinView] = field(default_factory=dict)
    failed_step: str | None = None

    @property
    def plan_steps(self) -> list[str]:
        return list(dict.fromkeys(step_ids(self.plan)))

    def failed(self) -> list[StepView]:
        return [s for s in self.steps.values() if s.state == "failed"]


class Workflows:
    """The tracked workflows in the engine's Redis; ``bus`` (or ``settings``) is needed by ``retry`` only.

    Async: ``await Workflows(url).list()``. ``prefix`` must be the engine's.
    """

    def __init__(self, redis_url: str | None = None, bus: Any = None, *, settings: BusSettings | None = None,
                 prefix: str = "eventbus:", ttl: int = DEFAULT_TTL, client: Any = None,
                 store: WorkflowStore | None = None) -> None:
        if store is None:
            if redis_url is None:
                raise ConfigurationError("Workflows needs redis_url (or store=, e.g. eventbus.testing's)")
            store = RedisStore(redis_url, prefix=prefix, ttl=ttl, client=client)
        self.store = store
        self._settings = settings if settings is not None else getattr(bus, "settings", None)

    async def close(self) -> None:
        await self.store.close()

    async def __aenter__(self) -> Workflows:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def list(self, *, failed: bool = False, limit: int = 50) -> list[WorkflowSummary]:
        """The newest ``limit`` workflows (by start), or the failed ones; expired ones are dropped."""
        ids = await self.store.ids(failed=failed, limit=limit)
        metas = await self.store.metas(ids)
        gone = [i for i, m in zip(ids, metas, strict=True) if m is None]
        await self.store.forget(gone)
        out = []
        for workflow_id, meta in zip(ids, metas, strict=True):
            if meta is None:
                continue
            total = meta.get("total")
            out.append(WorkflowSummary(
                workflow_id, meta["state"], _time(meta.get("started_at") or meta.get("first_seen")),
                _time(meta.get("finished_at")), int(total) if total else None, int(meta.get("done", 0)),
                meta.get("failed_step") or None))
        return out

    async def show(self, workflow_id: str) -> WorkflowView | None:
        """The workflow's tree and steps, or None when it is unknown (or expired)."""
        loaded = await self.store.load(workflow_id)
        if loaded is None:
            return None
        meta, records, joins = loaded
        plan = json.loads(meta["plan"]) if "plan" in meta else None
        on_error = json.loads(meta["on_error"]) if "on_error" in meta else []
        steps = {s: StepView.of(s, records.get(s)) for s in step_ids(plan)}
        steps.update({s: StepView.of(s, r) for s, r in records.items() if s not in steps})
        join_views = {g: JoinView(g, int(j.get("size", 0)), int(j.get("counted", 0)), _time(j.get("fired_at")),
                                  list(j.get("callbacks", []))) for g, j in joins.items()}
        return WorkflowView(workflow_id, meta.get("state", "running"),
                            _time(meta.get("started_at") or meta.get("first_seen")), _time(meta.get("finished_at")),
                            plan, on_error, steps, join_views, meta.get("failed_step") or None)

    async def retry(self, workflow_id: str) -> builtins.list[str]:
        """Replay every failed step's parked message (by id, from its DLQ); the workflow runs again.

        Returns the replayed step ids. ``ConfigurationError`` when there is nothing to retry or a
        parked message is not in its queue (already replayed, purged).
        """
        if self._settings is None:
            raise ConfigurationError("Workflows.retry needs bus= or settings= (the broker to replay on)")
        view = await self.show(workflow_id)
        if view is None:
            raise ConfigurationError(f"workflow {workflow_id} is not known (or has expired)")
        failed = view.failed()
        if not failed:
            raise ConfigurationError(f"workflow {workflow_id} has no failed step (state {view.state})")
        replayed = []
        for step in failed:
            if not step.queue or not step.message_id:
                raise ConfigurationError(f"step {step.step} failed without a parked message ({step.reason}): "
                                         "there is nothing to replay")
            await self.store.retrying(workflow_id, step.step)
            try:
                found = await asyncio.to_thread(self._replay, step.queue, step.message_id)
            except BaseException:
                await self._still_failed(workflow_id, step)
                raise
            if not found:
                await self._still_failed(workflow_id, step)
                raise ConfigurationError(f"step {step.step}: message {step.message_id} is not in {step.queue} "
                                         "(replayed already, or purged)")
            replayed.append(step.step)
        return replayed

    async def _still_failed(self, workflow_id: str, step: StepView) -> None:
        """The replay did not happen: the workflow is failed again, as before ``retry``."""
        record = {"state": "failed", "type": step.type, "attempt": step.attempt, "message_id": step.message_id,
                  "reason": step.reason, "error_type": step.error_type, "error": step.error, "queue": step.queue,
                  "failed_at": step.finished_at.timestamp() if step.finished_at else None}
        await self.store.failed(workflow_id, step.step, record, time.time())

    def _replay(self, queue: str, message_id: str) -> bool:
        assert self._settings is not None
        with self._broker_scope(), DeadLetters(self._settings) as tool:
            result = tool.replay(queue, lambda parked: parked.event_id == message_id, limit=1)
        return bool(result.replayed)

    def _broker_scope(self) -> contextlib.AbstractContextManager[Any]:
        """Where the replay goes: RabbitMQ, or the memory broker of an ``eventbus.testing`` store."""
        scope = getattr(self.store, "replay_scope", None)
        return scope() if scope is not None else contextlib.nullcontext()
