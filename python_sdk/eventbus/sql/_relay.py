"""The outbox relay: publish committed outbox rows with confirms, then mark them sent.

    claim rows (short transaction) → publish them, a window at a time, each with its stored
    event id → mark the confirmed ones sent, give the failed ones back with a backoff
    (second short transaction)

While a backlog lasts, ``run()`` overlaps the steps: while batch N is being published, one
transaction records batch N-1's results and claims batch N+1, so the publisher is never idle
waiting for the database and each batch costs one transaction instead of two.

No transaction is held open while publishing. If the process dies after a confirm and before
the rows are marked, their lease runs out and they are published again, with the same event ids:
consumers that deduplicate by id apply them once. A row is never lost: it stays pending until a
broker confirm (or an "unroutable" return, which means no queue is bound to take it) is recorded.

Rows with an ordering key leave in the key's order: a claim takes only the head row of each key
(``Outbox.claim``), so the next row of a key is claimed after this one is recorded sent, never
beside it. Keep ``lease`` longer than a publish can take (``confirm_timeout`` plus
``reconnect_window``): a relay whose publish outlives its lease could deliver an older row after
a newer one, which consumers then drop by its ``sequence`` (docs/ordering.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .._envelope import ordering_extensions
from .._exceptions import ContractError, UnroutableError
from .._outgoing import wrap_encoded
from ._outbox import Outbox, OutboxMessage
from ._sql import run_transaction

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from .._async_bus import EventBus

__all__ = ["OutboxRelay", "RelayStats"]

log = logging.getLogger("eventbus.outbox")


@dataclass(slots=True)
class RelayStats:
    """Counters since the relay started (read them for metrics)."""

    published: int = 0
    unroutable: int = 0
    failed: int = 0
    batches: int = 0


def _result(outcome: BaseException | None) -> str | Exception:
    """One row's fate: published, unroutable (recorded, never retried) or an error to retry later."""
    if outcome is None:
        return "published"
    if isinstance(outcome, UnroutableError):
        return "unroutable"
    return outcome if isinstance(outcome, Exception) else Exception(repr(outcome))


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

    def wake(self) -> None:
        self._wake.set()

    async def publish_once(self) -> int:
        """Claim one batch, publish it and record the results; returns how many rows were claimed."""
        messages = await asyncio.to_thread(run_transaction, self.engine, self._claim)
        if not messages:
            return 0
        results = await self._publish_all(messages)
        await asyncio.to_thread(run_transaction, self.engine, lambda c: self._record(c, messages, results))
        self._tally(messages, results)
        return len(messages)

    async def _pump(self) -> int:
        """Publish until a claim finds nothing (or ``stop()``), batches overlapping; returns rows handled.

        While batch N is published, one transaction records batch N-1 and claims N+1. That claim
        cannot take the next rows of N's keys (they wait for N to be recorded), so when it finds
        nothing, N is recorded and the claim made again, in one transaction, before giving up.
        A stop finishes the batch in hand and records it, so no claimed row waits for its lease.
        """
        handled = 0
        self._wake.clear()  # a wake() from here on means rows this claim may not have seen
        batch = await self._record_and_claim(None, more=True)
        previous: tuple[list[OutboxMessage], list[str | Exception]] | None = None
        while batch:
            publishing = asyncio.ensure_future(self._publish_all(batch))
            claim_more = not self._stopping
            if claim_more:
                self._wake.clear()
            try:
                following = await self._record_and_claim(previous, more=claim_more)
            finally:
                results = await publishing  # settles even if the database failed (rows then wait for the lease)
            if previous is not None:
                self._tally(*previous)
            previous = (batch, results)
            handled += len(batch)
            batch = following
            if not batch and claim_more and not self._stopping:
                batch = await self._record_and_claim(previous, more=True)
                self._tally(*previous)
                previous = None
        if previous is not None:
            await self._record_and_claim(previous, more=False)
            self._tally(*previous)
        return handled

    async def _record_and_claim(
        self, done: tuple[list[OutboxMessage], list[str | Exception]] | None, *, more: bool
    ) -> list[OutboxMessage]:
        """Record a published batch's results and claim the next batch, in one transaction."""

        def work(connection: Any) -> list[OutboxMessage]:
            if done is not None:
                self._record(connection, *done)
            return self._claim(connection) if more else []

        return await asyncio.to_thread(run_transaction, self.engine, work)

    def _claim(self, connection: Any) -> list[OutboxMessage]:
        return self.outbox.claim(connection, limit=self.batch_size, lease=self.lease)

    async def _publish_all(self, messages: list[OutboxMessage]) -> list[str | Exception]:
        """Publish a claimed batch as one: a few socket writes, confirmed by delivery tag; the rows'
        bytes are sent as stored (``contract.encode`` validated them when they were written)."""
        source = self.bus.settings.source
        results: list[str | Exception] = [""] * len(messages)
        outgoing, positions = [], []
        for position, m in enumerate(messages):
            try:
                contract = self.outbox.contracts.get(m.event_type)
            except ContractError as exc:  # a type this process does not know: retried later
                results[position] = exc
                continue
            extensions = ordering_extensions(m.partition_key, m.sequence) if m.partition_key is not None else None
            outgoing.append(wrap_encoded(contract, m.data, source=source, event_id=m.event_id, subject=m.subject,
                                         time=m.time, extensions=extensions))
            positions.append(position)
        try:
            outcomes: list[BaseException | None] = await self.bus._publish_outcomes(outgoing)
        except Exception as exc:  # the broker cannot be reached at all: every row waits for a retry
            outcomes = [exc] * len(outgoing)
        for position, outcome in zip(positions, outcomes, strict=True):
            results[position] = _result(outcome)
        return results

    def _record(self, connection: Any, messages: list[OutboxMessage], results: list[str | Exception]) -> None:
        sent = [m.seq for m, r in zip(messages, results, strict=True) if r == "published"]
        unroutable = [m.seq for m, r in zip(messages, results, strict=True) if r == "unroutable"]
        self.outbox.mark_sent(connection, sent, outcome="published")
        self.outbox.mark_sent(connection, unroutable, outcome="unroutable")
        now = datetime.now(UTC)
        for message, error in zip(messages, results, strict=True):
            if isinstance(error, Exception):
                retry_at = now + _backoff(message.attempts)
                self.outbox.release(
                    connection, message.seq, error=f"{type(error).__name__}: {error}", retry_at=retry_at
                )

    def _tally(self, messages: list[OutboxMessage], results: list[str | Exception]) -> None:
        """Count a batch whose results are recorded in the database."""
        unroutable = sum(1 for r in results if r == "unroutable")
        failed = [r for r in results if isinstance(r, Exception)]
        self.stats.published += len(messages) - unroutable - len(failed)
        self.stats.unroutable += unroutable
        self.stats.failed += len(failed)
        self.stats.batches += 1
        if unroutable:
            log.warning("%d outbox event(s) had no queue bound to take them; marked unroutable", unroutable)
        if failed:
            log.warning("%d outbox event(s) not confirmed, will retry: %s", len(failed), failed[0])

    async def run(self) -> None:
        """Publish until ``stop()``; database or broker outages are logged and retried."""
        self._stopping = False
        failures = 0
        while not self._stopping:
            try:
                await self._pump()
                failures = 0
            except Exception as exc:  # the relay must outlive outages of either side
                failures += 1
                log.error("outbox relay: %s: %s", type(exc).__name__, exc)
                await asyncio.sleep(min(30.0, self.poll_interval * 2**failures))
                continue
            if not self._stopping:  # the last claim found nothing: wait for a wake() since it, or the poll
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
