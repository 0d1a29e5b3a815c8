"""``eventbus topology apply``: declare the exchange of every contract, idempotently."""

from __future__ import annotations

import click

from eventbus import SyncEventBus
from eventbus_contracts import REGISTRY

from ._errors import one_line_errors
from ._options import service_option, url_option

__all__ = ["topology"]


@click.group()
def topology() -> None:
    """Broker topology (exchanges) derived from the contracts."""


@topology.command("apply")
@url_option
@service_option
@one_line_errors
def apply(url: str, service: str) -> None:
    """Declare one durable topic exchange per domain; safe to run any number of times."""
    with SyncEventBus.from_env(service, urls=(url,)) as bus:
        for name in bus.declare_exchanges(REGISTRY):
            types = [c.type for c in REGISTRY if c.exchange == name]
            click.echo(f"exchange {name} (topic, durable): {', '.join(types)}")
