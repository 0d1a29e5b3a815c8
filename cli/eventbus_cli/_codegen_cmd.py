"""``eventbus codegen python [--check]``: contracts to typed models, or a drift check."""

from __future__ import annotations

from pathlib import Path

import click

from eventbus_codegen import CodegenError, check_python, generate_python, write_python

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
    root = root or default_contracts_dir()
    out = out or default_python_out()
    try:
        files = generate_python(root)
    except CodegenError as exc:
        fail(str(exc))
    if check:
        diff = check_python(files, out)
        if diff:
            click.echo(diff)
            fail(f"{out} is stale: run 'eventbus codegen python'", EXIT_FINDINGS)
        click.echo(f"{out} is up to date ({len(files)} files)")
        return
    write_python(files, out)
    click.echo(f"wrote {len(files)} files to {out}")
