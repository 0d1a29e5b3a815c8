"""``eventbus codegen python [--check]``: contracts to typed models, or a drift check."""

from __future__ import annotations

from pathlib import Path

import click

from ._codegen_import import require_codegen
from ._errors import EXIT_FINDINGS, fail
from ._paths import default_contracts_dir, default_python_out

__all__ = ["codegen"]


@click.group()
def codegen() -> None:
    """Generate bindings from the contracts."""


@codegen.command("python")
@click.option("--contracts", "root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Contracts folder (default: contracts/ of the repository).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output package folder (default: generated/python/eventbus_contracts).")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 with a diff when the output is stale.")
def python(root: Path | None, out: Path | None, check: bool) -> None:
    """Pydantic v2 models and a typed registry for every contract."""
    codegen_ = require_codegen()
    root = root or default_contracts_dir()
    out = out or default_python_out()
    try:
        files = codegen_.generate_python(root)
    except codegen_.CodegenError as exc:
        fail(str(exc))
    if check:
        diff = codegen_.check_python(files, out)
        if diff:
            click.echo(diff)
            fail(f"{out} is stale: run 'eventbus codegen python'", EXIT_FINDINGS)
        click.echo(f"{out} is up to date ({len(files)} files)")
        return
    codegen_.write_python(files, out)
    click.echo(f"wrote {len(files)} files to {out}")
