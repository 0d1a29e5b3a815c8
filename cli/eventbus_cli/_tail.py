"""``eventbus tail [PATTERN]``: watch events go by, without taking them from anyone."""

from __future__ import annotations

import time
from pathlib import Path

import click
import orjson

from eventbus import ContractRegistry, EnvelopeError, SyncEventBus, TappedMessage, parse_envelope

from ._errors import fail, one_line_errors
from ._options import contracts_option, project_registry, url_option

__all__ = ["tail"]


def _describe(message: TappedMessage, registry: ContractRegistry) -> dict[str, object]:
    """What a person or a script wants to know about one message, valid or not."""
    record: dict[str, object] = {"exchange": message.exchange, "routing_key": message.routing_key}
    try:
        envelope = parse_envelope(message.headers, message.content_type, message.body)
    except EnvelopeError as exc:
        record.update(valid=False, error=f"{exc.reason}: {exc}", body=message.body.decode("utf-8", "replace"))
        return record
    attrs = envelope.attributes
    record.update(id=attrs.id, source=attrs.source, type=attrs.type, time=attrs.time, subject=attrs.subject)
    try:
        record["data"] = orjson.loads(envelope.data)
    except orjson.JSONDecodeError:
        record.update(valid=False, error="invalid_json", body=envelope.data.decode("utf-8", "replace"))
        return record
    if attrs.type not in registry:
        record.update(valid=False, error="unknown event type")
        return record
    problems = registry.get(attrs.type).violations(record["data"])
    record["valid"] = not problems
    if problems:
        record["error"] = "; ".join(str(p) for p in problems[:3])
    return record


def _human(record: dict[str, object]) -> str:
    stamp = time.strftime("%H:%M:%S")
    mark = "" if record.get("valid") else click.style(f"  INVALID: {record.get('error')}", fg="red")
    data = record.get("data", record.get("body", ""))
    shown = data if isinstance(data, str) else orjson.dumps(data).decode()
    if len(shown) > 160:
        shown = shown[:157] + "..."
    kind = click.style(str(record.get("type", record["routing_key"])), fg="cyan")
    subject = f" subject={record['subject']}" if record.get("subject") else ""
    return f"{stamp} {kind} id={record.get('id', '?')}{subject} {shown}{mark}"


@click.command()
@click.argument("pattern", default="#")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, for machines.")
@click.option("--count", type=int, default=None, help="Exit after this many events.")
@click.option("--timeout", type=float, default=None, help="Exit after this many seconds.")
@click.option("--exchange", "exchanges", multiple=True,
              help="Exchange to watch (repeatable; default: the exchanges of the project's contracts).")
@contracts_option
@url_option
@one_line_errors
def tail(pattern: str, as_json: bool, count: int | None, timeout: float | None, exchanges: tuple[str, ...],
         root: Path | None, url: str) -> None:
    """Print events whose type matches the topic PATTERN (default '#': everything) as they arrive.

    Each event is checked against its contract from the project's contracts folder (or --contracts DIR).
    """
    registry = project_registry(root)
    watched = list(exchanges) or registry.exchanges
    if not watched:
        fail("no exchange to watch: the contracts folder has no contracts (pass --exchange NAME)")
    bus = SyncEventBus.from_env("eventbus-tail", urls=(url,))
    if not as_json:
        click.echo(f"tailing {pattern!r} on {', '.join(watched)} (Ctrl-C to stop)", err=True)
    seen = 0
    try:
        for message in bus.tap(pattern, watched, timeout=timeout):
            record = _describe(message, registry)
            click.echo(orjson.dumps(record).decode() if as_json else _human(record))
            seen += 1
            if count is not None and seen >= count:
                break
    except KeyboardInterrupt:
        pass
