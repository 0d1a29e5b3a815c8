"""The engine's store in memory, for ``eventbus.testing``: chords and tracking without Redis.

The same decisions as the Lua scripts of ``_store.py``, taken in one step each (the event loop is the
lock): a member counts once, the first result stored wins, a complete join is fired by whoever holds
its lease, a cancelled workflow's join never fires. Nothing expires (a test is short); ``revoked`` is
the memory revocation store's check, so ``bus.cancel`` on a memory bus stops joins as on Redis.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any

from ._store import JoinOutcome

__all__ = ["MemoryWorkflowStore"]


class MemoryWorkflowStore:
    """``WorkflowEngine(bus, store=MemoryWorkflowStore())``; ``eventbus.testing.memory_workflows(broker)``."""

    def __init__(self, revoked: Callable[[str], Awaitable[bool]] | None = None,
                 replay_scope: Callable[[], AbstractContextManager[Any]] | None = None) -> None:
        """``revoked(workflow_id)``: is it cancelled; ``replay_scope()``: the context in which
        ``Workflows.retry`` replays from a DLQ (``eventbus.testing.in_memory(broker)``)."""
        self._revoked = revoked
        self.replay_scope = replay_scope
        self.meta: dict[str, dict[str, str]] = {}
        self.steps: dict[str, dict[str, dict[str, Any]]] = {}
        self.done: dict[str, set[str]] = {}
        self.plan: dict[str, set[str]] = {}
        self.stored: dict[tuple[str, str], dict[int, bytes]] = {}
        self.leases: dict[tuple[str, str], tuple[str, float]] = {}
        self.joins: dict[str, dict[str, dict[str, Any]]] = {}
        self.index: dict[str, float] = {}
        self.failed_index: dict[str, float] = {}

    async def close(self) -> None:
        return None

    # -- joins --------------------------------------------------------------------------------------

    async def count(self, workflow_id: str, group: str, index: int, size: int, result_json: bytes, *,
                    token: str, lease_ms: int) -> JoinOutcome:
        if self._revoked is not None and await self._revoked(workflow_id):
            return JoinOutcome("revoked", False, 0)
        if group in self.joins.get(workflow_id, {}):
            return JoinOutcome("done", False, 0)
        stored = self.stored.setdefault((workflow_id, group), {})
        added = index not in stored
        stored.setdefault(index, result_json)
        if len(stored) < size:
            return JoinOutcome("wait", added, len(stored))
        now = time.monotonic()
        holder = self.leases.get((workflow_id, group))
        if holder is None or holder[1] <= now:
            self.leases[(workflow_id, group)] = (token, now + lease_ms / 1000)
            return JoinOutcome("fire", added, len(stored))
        return JoinOutcome("busy", added, len(stored), max(1, int((holder[1] - now) * 1000)))

    async def results(self, workflow_id: str, group: str, size: int) -> list[Any]:
        stored = self.stored[(workflow_id, group)]
        return [json.loads(stored[i]) for i in range(size)]

    async def mark_fired(self, workflow_id: str, group: str, *, token: str, size: int, counted: int,
                         callbacks: Iterable[str]) -> None:
        self.joins.setdefault(workflow_id, {})[group] = {"size": size, "counted": counted, "fired_at": time.time(),
                                                         "callbacks": list(callbacks)}
        self.stored.pop((workflow_id, group), None)
        await self.release(workflow_id, group, token)

    async def release(self, workflow_id: str, group: str, token: str) -> None:
        holder = self.leases.get((workflow_id, group))
        if holder is not None and holder[0] == token:
            del self.leases[(workflow_id, group)]

    # -- tracking -------------------------------------------------------------------------------------

    def _touch(self, workflow_id: str) -> dict[str, str]:
        meta = self.meta.get(workflow_id)
        now = str(time.time())
        if meta is None:
            meta = self.meta[workflow_id] = {"state": "running", "first_seen": now}
            self.index.setdefault(workflow_id, float(now))
        meta["updated_at"] = now
        return meta

    def _complete_if_done(self, workflow_id: str) -> bool:
        meta = self.meta[workflow_id]
        if "total" not in meta or meta["state"] != "running":
            return False
        plan, done = self.plan.get(workflow_id, set()), self.done.get(workflow_id, set())
        if len(plan & done) < int(meta["total"]):
            return False
        meta.update(state="completed", finished_at=str(time.time()))
        return True

    async def started(self, workflow_id: str, *, plan: Any, on_error: Any, started_at: float,
                      steps: Iterable[str]) -> bool:
        meta = self._touch(workflow_id)
        self.index[workflow_id] = started_at
        steps = set(steps)
        self.plan[workflow_id] = steps
        meta.update(plan=json.dumps(plan), on_error=json.dumps(on_error), started_at=str(started_at),
                    total=str(len(steps)))
        return self._complete_if_done(workflow_id)

    async def completed(self, workflow_id: str, step: str, record: Mapping[str, Any]) -> bool:
        self._touch(workflow_id)
        self.steps.setdefault(workflow_id, {})[step] = dict(record)
        self.done.setdefault(workflow_id, set()).add(step)
        return self._complete_if_done(workflow_id)

    async def failed(self, workflow_id: str, step: str, record: Mapping[str, Any], failed_at: float) -> bool:
        meta = self._touch(workflow_id)
        old = self.steps.get(workflow_id, {}).get(step)
        if old is not None and (old.get("retried_at", -1) >= failed_at or old.get("state") == "completed"):
            return False
        self.steps.setdefault(workflow_id, {})[step] = dict(record)
        if meta["state"] != "cancelled":
            meta.update(state="failed", failed_step=step, finished_at=str(failed_at))
            self.failed_index[workflow_id] = failed_at
        return True

    async def cancelled(self, workflow_id: str, cancelled_at: float) -> None:
        meta = self._touch(workflow_id)
        meta.update(state="cancelled", cancelled_at=str(cancelled_at), finished_at=str(cancelled_at))
        self.failed_index.pop(workflow_id, None)

    async def retrying(self, workflow_id: str, step: str) -> bool:
        record = self.steps.get(workflow_id, {}).get(step)
        if record is None:
            return False
        record.update(state="retrying", retried_at=time.time())
        meta = self.meta[workflow_id]
        meta["state"] = "running"
        meta.pop("failed_step", None)
        meta.pop("finished_at", None)
        self.failed_index.pop(workflow_id, None)
        return True

    # -- reading ----------------------------------------------------------------------------------------

    async def ids(self, *, failed: bool, limit: int) -> list[str]:
        index = self.failed_index if failed else self.index
        return sorted(index, key=lambda i: index[i], reverse=True)[:limit]

    async def load(self, workflow_id: str) -> tuple[dict[str, str], dict[str, dict[str, Any]], dict[str, Any]] | None:
        meta = self.meta.get(workflow_id)
        if meta is None:
            return None
        steps = {k: dict(v) for k, v in self.steps.get(workflow_id, {}).items()}
        return dict(meta), steps, dict(self.joins.get(workflow_id, {}))

    async def metas(self, ids: list[str]) -> list[dict[str, str] | None]:
        out: list[dict[str, str] | None] = []
        for workflow_id in ids:
            meta = self.meta.get(workflow_id)
            out.append(None if meta is None else {**meta, "done": str(len(self.done.get(workflow_id, set())))})
        return out

    async def forget(self, ids: list[str]) -> None:
        for workflow_id in ids:
            self.index.pop(workflow_id, None)
            self.failed_index.pop(workflow_id, None)
