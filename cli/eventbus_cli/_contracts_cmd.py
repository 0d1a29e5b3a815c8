"""``eventbus contracts validate``: every schema well-formed, every example valid."""

from __future__ import annotations

from pathlib import Path

import click

from ._codegen_import import require_codegen
from ._errors import EXIT_FINDINGS, fail
from ._governance_cmd import breaking, lint
from ._paths import default_contracts_dir

__all__ = ["contracts"]


@click.group()
def contracts() -> None:
    """Check the contracts in contracts/."""


@contracts.command("validate")
@click.option(
    "--contracts", "root", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Contracts folder (default: contracts/ of the repository around the working directory).",
)
def validate(root: Path | None) -> None:
    """Check each schema against draft 2020-12 and its examples against the schema."""
    codegen_ = require_codegen()
    root = root or default_contracts_dir()
    try:
        problems = codegen_.validate_contracts(root)
    except codegen_.CodegenError as exc:
        fail(str(exc), EXIT_FINDINGS)
    for problem in problems:
        click.echo(str(problem))
    if problems:
        fail(f"{len(problems)} problem(s) in {root}", EXIT_FINDINGS)
    events = codegen_.load_contracts(root).events
    examples = sum(len(doc.schema.get("examples", [])) for doc in events)
    click.echo(f"{len(events)} contracts and their {examples} examples are valid")


contracts.add_command(lint)
contracts.add_command(breaking)
