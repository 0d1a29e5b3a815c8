"""``eventbus demo``: publish the examples of the project's contracts and watch a subscriber get them.

It works on any contracts repository: the events are the ``examples`` every contract carries, read
with the contracts at run time, so the command line needs no generated package. It runs against
a real broker or not at all: when none answers, it says so in one line with the fix. Each run
uses queues of its own (``demo-<run>.…``) and deletes them at the end, so a backlog left on a
shared broker never slows it down and runs in parallel do not steal from each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from eventbus import ContractRegistry, EventBus, EventContext, dead_letter_queue_name
from eventbus.transports._amqp import AMQPError
from eventbus.transports._amqp import connect as amqp_connect

from ._errors import fail, one_line_errors
from ._options import contracts_option, project_registry, url_option
from ._tables import console

__all__ = ["demo"]


def _examples(registry: ContractRegistry, rounds: int) -> list[Any]:
    """Every contract's examples as models, ``rounds`` times over."""
    events = []
    for contract in registry:
        for example in contract.schema.get("examples", []):
            events.append(contract.validate_python(example))
    return events * rounds


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


async def _run(url: str, registry: ContractRegistry, rounds: int, out: Console) -> None:
    run = f"demo-{uuid.uuid4().hex[:8]}"
    bus = EventBus.from_env(run, urls=(url,))
    events = _examples(registry, rounds)
    if not events:
        fail("the contracts have no examples to publish (add 'examples' to a schema)")
    received: list[str] = []
    done = asyncio.Event()
    table = Table("type", "event id", "attempt", "data", title=f"{len(events)} events, confirmed on publish, "
                  f"consumed from {bus.settings.service}.…")

    async def on_event(event: Any, ctx: EventContext) -> None:
        if ctx.subject != run:
            return  # someone else's, published on the same broker meanwhile
        received.append(ctx.id)
        data = orjson.dumps(event.model_dump(mode="json")).decode()
        table.add_row(ctx.type, ctx.id[:8] + "…", str(ctx.attempt), data if len(data) <= 60 else data[:59] + "…")
        if len(received) == len(events):
            done.set()

    for contract in registry:
        bus.subscribe(contract.model)(on_event)
    try:
        await bus.start()
        started = time.perf_counter()
        await bus.publish_many(events, subject=run)  # the subject tells this run's events from others'
        out.print(f"[bold]published[/] {len(events)} events, all confirmed by the broker")
        await asyncio.wait_for(done.wait(), timeout=30)
        elapsed = time.perf_counter() - started
        out.print(table)
        out.print(f"round trip for {len(events)} events: {elapsed * 1000:.0f} ms")
    finally:
        await bus.close(grace=1)
        queues = [s.queue for s in bus.subscriptions]
        await _delete_queues(url, queues + [dead_letter_queue_name(q) for q in queues])


@click.command()
@click.option("--rounds", default=1, show_default=True, help="How many times to publish every example.")
@contracts_option
@url_option
@one_line_errors
def demo(rounds: int, root: Path | None, url: str) -> None:
    """Publish every example of the project's contracts and print what a subscriber receives."""
    asyncio.run(_run(url, project_registry(root), rounds, console()))
