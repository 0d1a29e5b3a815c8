"""``eventbus contracts validate``: every schema well-formed, every example valid (and the
governance verbs ``lint``, ``breaking``, and ``export`` of the tasks' contracts, beside it)."""

from __future__ import annotations

from pathlib import Path

import click

from ._codegen_import import require_codegen
from ._errors import EXIT_FINDINGS, fail
from ._export_cmd import export
from ._governance_cmd import breaking, lint
from ._options import contracts_option, current_project

__all__ = ["contracts"]


@click.group()
def contracts() -> None:
    """Check the contracts of the project (its contracts folder)."""


@contracts.command("validate")
@contracts_option
def validate(root: Path | None) -> None:
    """Check each schema against draft 2020-12 and its examples against the schema."""
    codegen_ = require_codegen()
    root = root or current_project().contracts_dir
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
contracts.add_command(export)
