"""``context-handling demo``: the whole service on the local RabbitMQ and a throw-away SQLite file.

A simulated chat back end publishes a few thousand conversations among a few hundred users (some
late, some twice); the service scores them in batched transactions and publishes status changes
and candidate updates through its outbox; a downstream consumer receives those, dropping
re-published copies by event id. The terminal shows progress and then a summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aio_pika
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from eventbus import BusSettings, EventBus, EventContext, PublishError, consumer_queue_name, dead_letter_queue_name
from eventbus_contracts import CONVERSATION_ENDED_V1, CandidatesUpdatedV1, FriendshipStatusChangedV1

from .app import ContextHandlingService
from .batcher import Submitted
from .processor import Incoming
from .scoring import Status
from .settings import ServiceSettings
from .simulation import SimulatedConversation, simulate

__all__ = ["delete_queues", "run_demo"]

SERVICE = "context-handling-demo"
DOWNSTREAM = "context-handling-demo-downstream"
BACKEND = "chat-backend-simulator"


@dataclass
class Downstream:
    """A consumer of the derived events that applies each event id once."""

    seen: set[str]
    received: Counter[str]
    source: str
    duplicates: int = 0

    async def on_event(self, event: object, ctx: EventContext) -> None:
        if ctx.source != self.source:
            return  # another publisher's event on the shared exchange, not this demo's service
        if ctx.id in self.seen:
            self.duplicates += 1
            return
        self.seen.add(ctx.id)
        self.received[ctx.type] += 1


async def delete_queues(url: str, names: list[str]) -> None:
    """Delete the named queues (missing ones are fine): the demo's and the benchmark's clean-up."""
    connection = await aio_pika.connect(url)
    try:
        for name in names:
            channel = await connection.channel()
            await channel.queue_delete(name)
    finally:
        await connection.close()


def _demo_queues() -> list[str]:
    queues = [consumer_queue_name(SERVICE, "chat.conversation.ended.v1")]
    queues += [
        consumer_queue_name(DOWNSTREAM, t)
        for t in ("context.friendship.status_changed.v1", "context.candidates.updated.v1")
    ]
    return queues + [dead_letter_queue_name(q) for q in queues]


async def _publish(backend: EventBus, stream: list[SimulatedConversation], progress: Progress, task: object) -> None:
    window = asyncio.Semaphore(200)

    async def one(item: SimulatedConversation) -> None:
        async with window:
            for attempt in range(1, 6):  # like a real back end, retry a publish the broker did not confirm
                try:
                    await backend.publish(item.event, event_id=item.event_id, subject=item.event.conversation_id)
                    break
                except PublishError:
                    if attempt == 5:
                        raise
                    await asyncio.sleep(0.2 * attempt)
        progress.advance(task)  # type: ignore[arg-type]

    await asyncio.gather(*(one(item) for item in stream))


async def run_demo(
    console: Console, *, urls: tuple[str, ...], users: int, conversations: int, seed: int, timeout: float = 120.0
) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="context-handling-demo-"))
    bus = BusSettings(SERVICE, urls=urls, prefetch=1000)
    settings = ServiceSettings(
        bus=bus, database_url=f"sqlite:///{workdir / 'context.db'}", http=("127.0.0.1", 0), scheduler=False
    )
    backend = EventBus(BusSettings(BACKEND, urls=urls))
    downstream_bus = EventBus(BusSettings(DOWNSTREAM, urls=urls))
    downstream = Downstream(set(), Counter(), source=bus.source)
    downstream_bus.subscribe(FriendshipStatusChangedV1)(downstream.on_event)
    downstream_bus.subscribe(CandidatesUpdatedV1)(downstream.on_event)
    service = ContextHandlingService(settings)
    stream = simulate(users=users, conversations=conversations, seed=seed)
    # The shared broker may carry other people's conversations too: count and show only ours.
    ours = {item.event_id for item in stream}
    tally: Counter[str] = Counter()

    def observe(items: Sequence[Incoming], outcomes: Sequence[Submitted]) -> None:
        for item, submitted in zip(items, outcomes, strict=True):
            if item.event_id in ours:
                tally[submitted.outcome.value] += 1

    service.watch(observe)
    try:
        await backend.declare_exchanges([CONVERSATION_ENDED_V1])  # fails fast when no broker answers
        await delete_queues(urls[0], _demo_queues())  # left over from an interrupted run
        await downstream_bus.start()
        await service.start()
        console.print(
            f"[bold]context-handling[/] consuming [cyan]{consumer_queue_name(SERVICE, 'chat.conversation.ended.v1')}"
            f"[/] · SQLite {workdir / 'context.db'} · metrics {service.http.url if service.http else '-'}/metrics"
        )
        console.print(
            f"simulated chat back end: {len(stream)} events, {conversations} conversations "
            f"among {users} users over 45 days (some late, some sent twice)"
        )
        started = time.perf_counter()
        with Progress(
            TextColumn("{task.description:<34}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            published = progress.add_task("published by the back end", total=len(stream))
            processed = progress.add_task("processed (committed, acked)", total=len(stream))
            delivered = progress.add_task("derived events delivered downstream", total=None)
            publishing = asyncio.create_task(_publish(backend, stream, progress, published))
            deadline = time.monotonic() + timeout
            processed_in: float | None = None
            while True:
                done = sum(tally.values())
                if processed_in is None and done >= len(stream):
                    processed_in = time.perf_counter() - started
                progress.update(processed, completed=done)
                derived = service.totals["derived_events"]
                progress.update(delivered, completed=sum(downstream.received.values()), total=derived or None)
                if publishing.done():
                    publishing.result()
                    if done >= len(stream) and sum(downstream.received.values()) >= derived:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the demo did not finish within {timeout:.0f}s")
                await asyncio.sleep(0.1)
            delivered_in = time.perf_counter() - started
        _summary(console, service, downstream, stream, tally, processed_in or delivered_in, delivered_in)
    finally:
        await service.stop(grace=5, drain_outbox=0)
        await downstream_bus.close()
        await backend.close()
        with contextlib.suppress(Exception):  # the broker is gone: nothing to clean up
            await delete_queues(urls[0], _demo_queues())
        shutil.rmtree(workdir, ignore_errors=True)


def _summary(
    console: Console,
    service: ContextHandlingService,
    downstream: Downstream,
    stream: list[SimulatedConversation],
    tally: Counter[str],
    seconds: float,
    delivered_in: float,
) -> None:
    people_in_stream = {user for item in stream for user in item.event.participants}
    with service.engine.connect() as connection:
        pairs = [
            p
            for p in service.storage.all_pairs(connection)
            if p.user_a in people_in_stream and p.user_b in people_in_stream
        ]
    counts = Counter(p.status for p in pairs)
    totals = service.totals
    latencies = sorted(service.latencies)
    p50 = statistics.median(latencies) * 1000 if latencies else 0.0
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else 0.0

    statuses = Table(title="friendship status of the pairs that talked", title_justify="left")
    statuses.add_column("status")
    statuses.add_column("pairs", justify="right")
    statuses.add_column("")
    most = max(counts.values(), default=0) or 1
    for status in reversed(Status):
        statuses.add_row(status.value, str(counts[status]), "█" * max(1, round(30 * counts[status] / most)))

    friends: Counter[str] = Counter()
    for pair in pairs:
        if pair.status.is_friend:
            friends.update((pair.user_a, pair.user_b))
    people = [user for user, _ in friends.most_common(3)]
    cached = service.cache.get_many(people)
    candidates = Table(title="top candidates of the best-connected users (from the cache)", title_justify="left")
    for column in ("user", "friends", "candidate", "rank score", "mutual friends"):
        candidates.add_column(
            column, justify="right" if column in ("friends", "rank score", "mutual friends") else "left"
        )
    for user in people:
        ranked = cached[user].candidates[:3] if user in cached else []
        for n, candidate in enumerate(ranked or [None]):
            if candidate is None:
                candidates.add_row(user, str(friends[user]), "(none)", "", "")
                continue
            candidates.add_row(
                user if n == 0 else "",
                str(friends[user]) if n == 0 else "",
                candidate.user_id,
                f"{candidate.rank_score:.1f}",
                str(candidate.mutual_friends),
            )

    console.print(statuses)
    console.print(candidates)
    duplicates_sent = sum(1 for s in stream if s.duplicate)
    received = downstream.received
    console.print(
        f"[bold]{len(stream)}[/] events processed in {seconds:.1f} s: "
        f"[bold green]{len(stream) / seconds:.0f} events/s[/] while they were being published; "
        f"latency p50 {p50:.0f} ms, p99 {p99:.0f} ms (delivery to commit); "
        f"every derived event delivered downstream after {delivered_in:.1f} s"
    )
    console.print(
        f"exactly once: {tally['applied']} conversations applied, {tally['duplicate']} re-sent copies recognised "
        f"by event id ({duplicates_sent} sent twice), {tally['rejected']} rejected"
    )
    console.print(
        f"derived events through the outbox: {totals['status_changes']} status changes and "
        f"{totals['derived_events'] - totals['status_changes']} candidate updates; downstream received "
        f"{received['context.friendship.status_changed.v1']} + {received['context.candidates.updated.v1']} "
        f"distinct ({downstream.duplicates} re-published copies dropped by id)"
    )
