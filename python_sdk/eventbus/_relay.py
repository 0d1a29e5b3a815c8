"""The outbox relay: publish committed outbox rows with confirms, then mark them sent.

    claim rows (short transaction) → publish them, a window at a time, each with its stored
    event id → mark the confirmed ones sent, give the failed ones back with a backoff
    (second short transaction)

No transaction is held open while publishing. If the process dies after a confirm and before
the rows are marked, their lease runs out and they are published again, with the same event ids:
consumers that deduplicate by id apply them once. A row is never lost: it stays pending until a
broker confirm (or an "unroutable" return, which means no queue is bound to take it) is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ._exceptions import UnroutableError
from ._outbox import Outbox, OutboxMessage
from ._sql import run_transaction

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from ._async_bus import EventBus

__all__ = ["OutboxRelay", "RelayStats"]

log = logging.getLogger("eventbus.outbox")


@dataclass(slots=True)
class RelayStats:
    """Counters since the relay started (read them for metrics)."""

    published: int = 0
    unroutable: int = 0
    failed: int = 0
    batches: int = 0


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(60.0, 0.5 * 2 ** max(0, attempts - 1)))


class OutboxRelay:
    """Moves rows from an ``Outbox`` to the broker through ``bus`` until stopped.

    Call ``wake()`` after committing new rows to publish them at once instead of at the next
    poll; the poll (``poll_interval``) picks up rows written by other processes and rows whose
    retry time has come.
    """

    def __init__(
        self,
        engine: Engine,
        outbox: Outbox,
        bus: EventBus,
        *,
        batch_size: int = 500,
        lease: timedelta = timedelta(seconds=60),
        poll_interval: float = 1.0,
    ) -> None:
        self.engine = engine
        self.outbox = outbox
        self.bus = bus
        self.batch_size = batch_size
        self.lease = lease
        self.poll_interval = poll_interval
        self.stats = RelayStats()
        self._wake = asyncio.Event()
        self._stopping = False
        self._window = asyncio.Semaphore(bus.settings.publish_window)

    def wake(self) -> None:
        self._wake.set()

    async def publish_once(self) -> int:
        """Claim one batch, publish it and record the results; returns how many rows were claimed."""
        messages = await asyncio.to_thread(
            run_transaction,
            self.engine,
            lambda c: self.outbox.claim(c, limit=self.batch_size, lease=self.lease),
        )
        if not messages:
            return 0
        results = await asyncio.gather(*(self._publish(m) for m in messages))
        sent = [m.seq for m, r in zip(messages, results, strict=True) if r == "published"]
        unroutable = [m.seq for m, r in zip(messages, results, strict=True) if r == "unroutable"]
        failed = [(m, r) for m, r in zip(messages, results, strict=True) if isinstance(r, Exception)]

        def record(connection: Any) -> None:
            self.outbox.mark_sent(connection, sent, outcome="published")
            self.outbox.mark_sent(connection, unroutable, outcome="unroutable")
            now = datetime.now(UTC)
            for message, error in failed:
                retry_at = now + _backoff(message.attempts)
                self.outbox.release(
                    connection, message.seq, error=f"{type(error).__name__}: {error}", retry_at=retry_at
                )

        await asyncio.to_thread(run_transaction, self.engine, record)
        self.stats.published += len(sent)
        self.stats.unroutable += len(unroutable)
        self.stats.failed += len(failed)
        self.stats.batches += 1
        if unroutable:
            log.warning("%d outbox event(s) had no queue bound to take them; marked unroutable", len(unroutable))
        if failed:
            log.warning("%d outbox event(s) not confirmed, will retry: %s", len(failed), failed[0][1])
        return len(messages)

    async def _publish(self, message: OutboxMessage) -> str | Exception:
        async with self._window:
            try:
                await self.bus.publish(
                    self.outbox.decode(message), event_id=message.event_id, subject=message.subject, time=message.time
                )
            except UnroutableError:
                return "unroutable"
            except Exception as exc:  # PublishError, or the connection itself failed: retry the row later
                return exc
        return "published"

    async def run(self) -> None:
        """Publish until ``stop()``; database or broker outages are logged and retried."""
        self._stopping = False
        failures = 0
        while not self._stopping:
            try:
                claimed = await self.publish_once()
                failures = 0
            except Exception as exc:  # the relay must outlive outages of either side
                failures += 1
                log.error("outbox relay: %s: %s", type(exc).__name__, exc)
                claimed = 0
                await asyncio.sleep(min(30.0, self.poll_interval * 2**failures))
            if claimed < self.batch_size and not self._stopping:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def drain(self, timeout: float = 30.0) -> int:
        """Publish until nothing is pending (or ``timeout`` seconds pass); returns rows still pending."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            claimed = await self.publish_once()
            if claimed:
                continue
            pending = await asyncio.to_thread(run_transaction, self.engine, self.outbox.pending_count)
            if pending == 0 or loop.time() >= deadline:
                return pending
            await asyncio.sleep(min(self.poll_interval, 0.2))
