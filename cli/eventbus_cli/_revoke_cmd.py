"""``eventbus revoke EVENT_ID`` and ``eventbus workflow cancel WORKFLOW_ID``: Celery's revoke and a
workflow's cancel from the command line, through the SDK's ``EventBus.revoke``/``cancel``.

Both write to the revocation store (``--store`` or ``EVENTBUS_REVOCATIONS_URL``); ``cancel`` also
publishes the ``eventbus.workflow.cancelled.v1`` report to the broker (``--url`` or ``EVENTBUS_URL``).
``cancel`` is a plain command that ``main`` adds to the ``workflow`` group.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import click

from eventbus import BusSettings, EventBus

from ._errors import fail, one_line_errors
from ._options import service_option, url_option

__all__ = ["cancel", "revoke"]

_DAY = 86400.0

store_option = click.option(
    "--store", "store", envvar="EVENTBUS_REVOCATIONS_URL", default=None,
    show_default="EVENTBUS_REVOCATIONS_URL",
    help="The revocation store (redis://host:6379/0) the workers check.",
)
ttl_option = click.option(
    "--ttl-days", "ttl_days", type=click.FloatRange(min=0, min_open=True), default=7.0, show_default=True,
    help="How long the revocation is kept (past the latest time the message could still arrive).",
)


def _with_bus(url: str, service: str, store: str | None, work: Callable[[EventBus], Coroutine[Any, Any, None]]) -> None:
    if not store:
        fail("no revocation store: pass --store redis://HOST:6379/0 or set EVENTBUS_REVOCATIONS_URL "
             "(the same store the workers are configured with)")

    async def run() -> None:
        async with EventBus(BusSettings(service=service, urls=(url,), revocations_url=store)) as bus:
            await work(bus)

    asyncio.run(run())


@click.command()
@click.argument("event_id")
@store_option
@ttl_option
@url_option
@service_option
@one_line_errors
def revoke(event_id: str, store: str | None, ttl_days: float, url: str, service: str) -> None:
    """Revoke a delayed message or a workflow step by its event id (what apply_async returned).

    A worker with the same store drops it, unrun, when it falls due; a message already handled is
    not affected.
    """
    _with_bus(url, service, store, lambda bus: bus.revoke(event_id, ttl=ttl_days * _DAY))
    click.echo(f"revoked {event_id}")


@click.command()
@click.argument("workflow_id")
@store_option
@ttl_option
@url_option
@service_option
@one_line_errors
def cancel(workflow_id: str, store: str | None, ttl_days: float, url: str, service: str) -> None:
    """Cancel a workflow: its steps not yet run are dropped by the workers, and the cancel is reported.

    A step already running finishes, but the steps it forwards are dropped in turn.
    """
    _with_bus(url, service, store, lambda bus: bus.cancel(workflow_id, ttl=ttl_days * _DAY))
    click.echo(f"cancelled workflow {workflow_id}")
