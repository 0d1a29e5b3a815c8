"""``eventbus publish TYPE --data JSON|@file``: validated, confirmed, prints the event id."""

from __future__ import annotations

from pathlib import Path

import click

from eventbus import ContractError, EventValidationError, SyncEventBus

from ._errors import fail, one_line_errors
from ._options import contracts_option, current_project, project_registry, service_option, url_option

__all__ = ["publish"]


def _read_data(data: str) -> bytes:
    if data.startswith("@"):
        return Path(data[1:]).read_bytes()
    return data.encode("utf-8")


@click.command()
@click.argument("event_type")
@click.option("--data", "data", required=True, help="The event data as JSON, or @path to a JSON file.")
@click.option("--subject", default=None, help="CloudEvents subject (e.g. the conversation id).")
@click.option("--id", "event_id", default=None, help="Event id (default: a new UUID).")
@contracts_option
@url_option
@service_option
@one_line_errors
def publish(event_type: str, data: str, subject: str | None, event_id: str | None, root: Path | None, url: str,
            service: str) -> None:
    """Validate DATA against EVENT_TYPE's contract, publish it with a confirm, print the event id.

    The contract comes from the project's contracts folder (or --contracts DIR).
    """
    try:
        contract = project_registry(root).get(event_type)
    except ContractError as exc:
        fail(f"{exc} in {root or current_project().describe()}")
    try:
        event = contract.decode(_read_data(data))
    except EventValidationError as exc:
        fail(f"invalid {event_type} data: {exc}")
    with SyncEventBus.from_env(service, urls=(url,)) as bus:
        click.echo(bus.publish(event, subject=subject, event_id=event_id))
