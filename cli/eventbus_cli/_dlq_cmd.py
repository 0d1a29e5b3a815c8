"""``eventbus dlq list|show|replay|purge``: the parking lot, from the command line.

Without the management plugin there is no way to list queues over AMQP, so ``list`` checks the
names the topology gives: ``<service>.<type>.dlq`` for every contract and each ``--service``
(or the queues of ``--app MODULE[:ATTR]``), the queues named on the command line, and
``eventbus.delay.unroutable``. Every command takes a DLQ name or its consumer queue's name.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import click
import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from eventbus import BusSettings, DeadLetters, ParkedMessage, dead_letter_queue_name
from eventbus._dead_letters import is_dead_letter_queue
from eventbus._delay import UNROUTABLE_QUEUE

from ._errors import EXIT_FINDINGS, fail, one_line_errors
from ._loader import LoadError, load_bus
from ._options import project_registry, url_option
from ._tables import console

__all__ = ["dlq"]

_PROGRESS_FROM = 500  # show a progress bar for passes over at least this many messages
_err = Console(stderr=True)


def _dlq_name(queue: str) -> str:
    return queue if is_dead_letter_queue(queue) else dead_letter_queue_name(queue)


def _tool(url: str) -> DeadLetters:
    return DeadLetters(BusSettings(service="eventbus-dlq", urls=(url,)))


def _existing(tool: DeadLetters, name: str) -> int:
    """The depth of queue ``name``; a one-line error when there is no such queue."""
    depth = tool.depth(name)
    if depth is None:
        fail(f"queue {name!r} does not exist")
    return depth  # type: ignore[return-value]


@contextlib.contextmanager
def _progress(label: str, total: int) -> Iterator[Any]:
    if total < _PROGRESS_FROM:
        yield None
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=_err, transient=True) as progress:
        task = progress.add_task(label, total=total)
        yield lambda done, _total: progress.update(task, completed=done)


@click.group()
def dlq() -> None:
    """Dead-letter queues: list them, show what is parked and why, replay or purge."""


@dlq.command("list")
@click.argument("queues", nargs=-1)
@click.option("--service", "services", multiple=True, envvar="EVENTBUS_SERVICE",
              help="Check <service>.<type>.dlq for every contract (repeatable; default: EVENTBUS_SERVICE).")
@click.option("--app", default=None, metavar="MODULE[:ATTR]", help="Check the DLQs of this bus's subscriptions.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per queue.")
@url_option
@one_line_errors
def list_(queues: tuple[str, ...], services: tuple[str, ...], app: str | None, as_json: bool, url: str) -> None:
    """Dead-letter queues that exist, with how many messages wait in each."""
    names = [_dlq_name(q) for q in queues]
    if services:
        names += [dead_letter_queue_name(f"{s}.{c.type}") for s in services for c in project_registry()]
    if app is not None:
        try:
            bus = asyncio.run(load_bus(app))
        except LoadError as exc:
            fail(str(exc))
        names += [dead_letter_queue_name(s.queue) for s in bus.subscriptions]
    names.append(UNROUTABLE_QUEUE)
    with _tool(url) as tool:
        found = tool.depths(dict.fromkeys(names))
    if as_json:
        for name, depth in found.items():
            click.echo(orjson.dumps({"queue": name, "messages": depth}).decode())
        return
    table = Table("queue", "messages")
    for name, depth in found.items():
        table.add_row(name, str(depth))
    console().print(table)
    if not services and app is None and not queues:
        click.echo("(name a queue, --service or --app to check more dead-letter queues)", err=True)


def _row(message: ParkedMessage, whole: bool) -> list[str]:
    error = message.error if whole or len(message.error) <= 80 else message.error[:79] + "…"
    attempts = "" if message.attempts is None else str(message.attempts)
    return [str(message.position), message.event_id or "", message.event_type or "", message.reason, attempts,
            message.parked_at or "", error]


@dlq.command()
@click.argument("queue")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Messages to show.")
@click.option("--skip", type=click.IntRange(min=0), default=0, show_default=True, help="Messages to skip first.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message, with headers and body.")
@url_option
@one_line_errors
def show(queue: str, limit: int, skip: int, as_json: bool, url: str) -> None:
    """Show parked messages of QUEUE (a DLQ or its consumer queue) and why they were parked.

    Messages are read and handed back in their order; none is removed.
    """
    name = _dlq_name(queue)
    with _tool(url) as tool, _progress(f"reading {name}", _existing(tool, name)) as progress:
        total, messages = tool.peek(name, skip=skip, limit=limit, progress=progress)
    if as_json:
        for message in messages:
            click.echo(orjson.dumps(message.to_json()).decode())
        return
    table = Table("#", "event id", "type", "reason", "attempts", "parked at", "error",
                  title=f"{name}: {total} message(s), showing {len(messages)} from #{skip}")
    out = console()
    for message in messages:
        table.add_row(*_row(message, whole=not out.is_terminal))
    out.print(table)


@dlq.command()
@click.argument("queue")
@click.option("--id", "ids", multiple=True, help="Replay the message with this event id (repeatable).")
@click.option("--all", "everything", is_flag=True, help="Replay every message.")
@click.option("--reason", default=None, help="Replay messages whose park reason is TEXT or whose error contains it.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Replay at most this many.")
@url_option
@one_line_errors
def replay(queue: str, ids: tuple[str, ...], everything: bool, reason: str | None, limit: int | None,
           url: str) -> None:
    """Send parked messages of QUEUE back to the queue they were consumed from.

    Each copy is confirmed by the broker before the parked message is removed; the copy starts
    over at attempt 1. Messages that are not selected stay where they were.
    """
    if not (ids or everything or reason):
        raise click.UsageError("say what to replay: --id ID, --reason TEXT or --all")
    if everything and (ids or reason):
        raise click.UsageError("--all replays everything; leave out --id and --reason")
    name = _dlq_name(queue)
    wanted = frozenset(ids)
    with _tool(url) as tool, _progress(f"replaying from {name}", _existing(tool, name)) as progress:
        result = tool.replay(name, lambda m: m.matches(wanted, reason), limit=limit, progress=progress)
    click.echo(f"replayed {len(result.replayed)} of {result.scanned} message(s) from {name}")
    for event_id, problem in result.failed:
        click.echo(f"error: {event_id} stays parked: {problem}", err=True)
    missing = wanted - set(result.replayed) - {event_id for event_id, _ in result.failed}
    for event_id in sorted(missing):
        click.echo(f"error: no message with id {event_id} in {name}", err=True)
    if result.failed or missing:
        raise SystemExit(EXIT_FINDINGS)


@dlq.command()
@click.argument("queue")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@url_option
@one_line_errors
def purge(queue: str, yes: bool, url: str) -> None:
    """Delete every message parked in QUEUE (asks first unless --yes)."""
    name = _dlq_name(queue)
    with _tool(url) as tool:
        depth = _existing(tool, name)
        if not yes and not click.confirm(f"delete all {depth} message(s) in {name}?", default=False, err=True):
            fail("purge cancelled; nothing was deleted")
        purged = tool.purge(name)
    click.echo(f"purged {purged} message(s) from {name}")
