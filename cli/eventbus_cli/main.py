"""Entry point of the ``eventbus`` console script."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from ._codegen_cmd import codegen
from ._contracts_cmd import contracts
from ._demo import demo
from ._dlq_cmd import dlq
from ._docs_cmd import docs
from ._init_cmd import init, new
from ._publish import publish
from ._revoke_cmd import cancel, revoke
from ._tail import tail
from ._topology_cmd import topology
from ._worker import worker
from ._workflow_cmd import workflow

__all__ = ["cli", "main"]


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log what the SDK does.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar="EVENTBUS_CONFIG",
              help="Project config (default: the nearest eventbus.toml or pyproject.toml with [tool.eventbus]).")
@click.version_option(package_name="eventbus")
def cli(verbose: bool, config_file: Path | None) -> None:
    """eventbus: contracts, code generation and tooling for the RabbitMQ event bus."""
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not verbose:
        # The client libraries log every failed connect attempt; our one-line error says it better.
        for name in ("pika", "aiormq", "aio_pika"):
            logging.getLogger(name).setLevel(logging.CRITICAL)


for command in (codegen, contracts, demo, dlq, docs, init, new, publish, revoke, tail, topology, worker, workflow):
    cli.add_command(command)

# `workflow cancel` joins the `workflow` group (list, show, retry) when there is one, else starts it.
_workflow = cli.commands.get("workflow")
if not isinstance(_workflow, click.Group):
    _workflow = click.Group("workflow", help="Workflows: cancel (and, with the engine, list, show, retry).")
    cli.add_command(_workflow)
_workflow.add_command(cancel)


def main() -> None:
    cli(prog_name="eventbus")
