"""``eventbus docs build --out DIR``: the static event catalog and its AsyncAPI 3.0 document."""

from __future__ import annotations

from pathlib import Path

import click

from ._codegen_import import require_codegen
from ._errors import fail
from ._options import contracts_option, current_project

__all__ = ["docs"]


@click.group()
def docs() -> None:
    """Documentation generated from the contracts."""


@docs.command("build")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write the catalog to (index.html, events/, schemas/, asyncapi.yaml).")
@contracts_option
def build(out: Path, root: Path | None) -> None:
    """An HTML page per event and version, an index by domain, and asyncapi.yaml."""
    codegen_ = require_codegen()
    from eventbus_governance.catalog import build_docs

    root = root or current_project().contracts_dir
    try:
        written = build_docs(root, out)
    except (codegen_.CodegenError, OSError) as exc:
        fail(str(exc))
    click.echo(f"catalog in {out} ({len(written)} file(s) written): open {out / 'index.html'}")
