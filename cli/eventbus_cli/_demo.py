"""``eventbus demo``: publish a few conversations on the local RabbitMQ and watch a subscriber get them.

It runs against a real broker or not at all: when none answers, it says so in one line with
the fix instead of pretending. Each run uses queues of its own (``demo-<run>.…``) and deletes
them at the end, so a backlog left on a shared broker by earlier runs or other publishers of
``chat.conversation.ended.v1`` never slows it down, and runs in parallel do not steal from
each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import click
from rich.console import Console
from rich.table import Table

from eventbus import EventBus, EventContext, dead_letter_queue_name
from eventbus._amqp import AMQPError
from eventbus._amqp import connect as amqp_connect
from eventbus_contracts import ConversationEndedV1

from ._errors import one_line_errors
from ._options import url_option

__all__ = ["demo", "sample_conversations"]

USERS = [f"u_{n:04d}" for n in range(1, 41)]


def sample_conversations(count: int, seed: int = 7) -> list[ConversationEndedV1]:
    """Plausible conversations between 2 to 4 of 40 users, over the last few days."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    events = []
    for n in range(count):
        people = rng.sample(USERS, rng.choice((2, 2, 2, 3, 4)))
        started = now - timedelta(days=rng.uniform(0, 5), minutes=rng.uniform(0, 600))
        ended = started + timedelta(minutes=rng.uniform(1, 150))
        per_person = {p: rng.randint(0, 40) for p in people}
        events.append(
            ConversationEndedV1(
                conversation_id=f"conv_demo_{seed}_{n:05d}",
                participants=people,
                started_at=started,
                ended_at=ended,
                message_count=sum(per_person.values()),
                messages_by_participant=per_person,
                ended_reason=rng.choice(["completed", "participant_left", "timed_out"]),
            )
        )
    return events


async def _delete_queues(url: str, queues: list[str]) -> None:
    with contextlib.suppress(AMQPError, OSError, TimeoutError):
        async with asyncio.timeout(10):
            connection = await amqp_connect(url, name="eventbus-demo:cleanup")
            try:
                channel = await connection.channel()
                for queue in queues:
                    await channel.queue_delete(queue)
            finally:
                await connection.close()


async def _run(url: str, count: int, console: Console) -> None:
    bus = EventBus.from_env(f"demo-{uuid.uuid4().hex[:8]}", urls=(url,))
    expected = sample_conversations(count, seed=int(time.time()))
    wanted = {e.conversation_id for e in expected}
    done = asyncio.Event()
    table = Table(title=f"{count} conversations, confirmed on publish, consumed from {bus.settings.service}.…")
    for column in ("conversation", "participants", "messages", "minutes", "attempt"):
        table.add_column(column)

    @bus.subscribe(ConversationEndedV1)
    async def on_conversation_ended(event: ConversationEndedV1, ctx: EventContext) -> None:
        if event.conversation_id not in wanted:
            return  # someone else's, published on the same broker meanwhile
        wanted.discard(event.conversation_id)
        minutes = (event.ended_at - event.started_at).total_seconds() / 60
        console.print(f"[green]received[/] {ctx.type} id={ctx.id[:8]}… {event.conversation_id}")
        table.add_row(event.conversation_id, ", ".join(event.participants), str(event.message_count),
                      f"{minutes:.0f}", str(ctx.attempt))
        if not wanted:
            done.set()

    try:
        await bus.start()
        started = time.perf_counter()
        ids = await bus.publish_many(expected)
        console.print(f"[bold]published[/] {len(ids)} events, all confirmed by the broker")
        await asyncio.wait_for(done.wait(), timeout=30)
        elapsed = time.perf_counter() - started
        console.print(table)
        console.print(f"round trip for {count} events: {elapsed * 1000:.0f} ms")
    finally:
        await bus.close(grace=1)
        queues = [s.queue for s in bus.subscriptions]
        await _delete_queues(url, queues + [dead_letter_queue_name(q) for q in queues])


@click.command()
@click.option("--count", default=10, show_default=True, help="How many conversations to publish.")
@url_option
@one_line_errors
def demo(count: int, url: str) -> None:
    """Publish COUNT conversation.ended events and print what a typed subscriber receives."""
    asyncio.run(_run(url, count, Console()))
