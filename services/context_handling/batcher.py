"""Group concurrently delivered events into one database transaction, without waiting to fill up.

The bus runs one handler call per delivery, up to the prefetch window at once. Each call hands
its event to the batcher and waits; the batcher writes whatever is waiting as one batch (in a
worker thread), and while that batch is being written the next one gathers. Under light load a
batch is one event and nothing waits; under heavy load a batch is as large as the prefetch
window allows, and one commit serves hundreds of events. Each handler returns only after its
event's transaction committed, so the SDK acks after the commit.

If a batch fails as a whole, its events are retried one by one, so one poisonous event fails
alone and the others go through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .processor import BatchResult, Incoming, Outcome
from .scoring import InvalidConversation

__all__ = ["Batcher", "Submitted"]

log = logging.getLogger("context_handling")


@dataclass(frozen=True, slots=True)
class Submitted:
    """What a handler learns once its event's batch committed."""

    outcome: Outcome
    error: InvalidConversation | None
    latency: float  # seconds from submit to commit


@dataclass(slots=True)
class _Waiting:
    item: Incoming
    received: float
    future: asyncio.Future[Submitted]


class Batcher:
    """Serializes writes of one process into batches of at most ``max_batch`` events."""

    def __init__(
        self,
        process: Callable[[Sequence[Incoming]], BatchResult],
        *,
        max_batch: int,
        on_batch: Callable[[Sequence[Incoming], BatchResult, Sequence[Submitted]], None] | None = None,
        after_commit: Callable[[BatchResult], None] | None = None,
    ) -> None:
        self._process = process
        self.max_batch = max_batch
        self._on_batch = on_batch
        # Best-effort work after a batch committed and its handlers were released (the cache write):
        # run in a worker thread while the next batch is written; one at a time, in batch order.
        self._after_commit = after_commit
        self._follow_up: asyncio.Future[None] | None = None
        self._queue: deque[_Waiting] = deque()
        self._writing = False
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if not self.running:
            self._task = asyncio.create_task(self._run(), name="context-handling:batcher")

    async def stop(self) -> None:
        """Finish what was submitted (including the batch being written), then stop."""
        task, self._task = self._task, None
        if task is None:
            return
        while (self._queue or self._writing) and not task.done():
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self._settle_follow_up()

    async def _settle_follow_up(self) -> None:
        follow_up, self._follow_up = self._follow_up, None
        if follow_up is not None:
            try:
                await follow_up
            except Exception:
                log.exception("after-commit work failed")

    async def submit(self, item: Incoming) -> Submitted:
        """Queue one event; returns after its batch committed, raises if its batch failed."""
        if not self.running:
            raise RuntimeError("the batcher is not running")
        future: asyncio.Future[Submitted] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiting(item, time.perf_counter(), future))
        self._ready.set()
        return await future

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._ready.clear()
                await self._ready.wait()
            batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            self._writing = True
            try:
                await self._write(batch)
            finally:
                self._writing = False

    async def _write(self, batch: list[_Waiting]) -> None:
        try:
            result = await asyncio.to_thread(self._process, [w.item for w in batch])
        except Exception as exc:
            if len(batch) == 1:
                if not batch[0].future.done():
                    batch[0].future.set_exception(exc)
                return
            log.warning(
                "a batch of %d failed (%s: %s); retrying its events one by one", len(batch), type(exc).__name__, exc
            )
            for waiting in batch:
                await self._write([waiting])
            return
        done = time.perf_counter()
        submitted = [
            Submitted(result.outcomes[i], result.errors.get(i), done - w.received) for i, w in enumerate(batch)
        ]
        if self._on_batch is not None:
            try:
                self._on_batch([w.item for w in batch], result, submitted)
            except Exception:  # metrics and observers must never keep a committed batch from being acked
                log.exception("after-batch hook failed")
        for waiting, outcome in zip(batch, submitted, strict=True):
            if not waiting.future.done():
                waiting.future.set_result(outcome)
        if self._after_commit is not None:
            await self._settle_follow_up()  # the previous batch's, so that cache writes land in order
            self._follow_up = asyncio.ensure_future(asyncio.to_thread(self._after_commit, result))
