"""``eventbus codegen python|typescript|go [--check]``: contracts to bindings, or a drift check."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import click

from ._codegen_import import require_codegen
from ._errors import EXIT_FINDINGS, fail
from ._paths import default_contracts_dir, default_generated_dir, default_python_out

__all__ = ["codegen"]

Files = Mapping[str, str]

_contracts_option = click.option(
    "--contracts", "root", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Contracts folder (default: contracts/ of the repository).",
)
_check_option = click.option(
    "--check", is_flag=True, help="Write nothing; exit 1 with a diff when the output is stale."
)


@click.group()
def codegen() -> None:
    """Generate bindings from the contracts."""


def _emit(
    language: str,
    generate: Callable[[], Files],
    write: Callable[[Files, Path], object],
    check_drift: Callable[[Files, Path], str],
    out: Path,
    check: bool,
    rerun: str,
) -> None:
    """Generate, then write ``out`` or compare it; every failure is one line and a non-zero exit."""
    codegen_ = require_codegen()
    try:
        files = generate()
    except (codegen_.CodegenError, ValueError) as exc:
        fail(str(exc))
    if check:
        diff = check_drift(files, out)
        if diff:
            click.echo(diff)
            fail(f"{out} is stale: run '{rerun}'", EXIT_FINDINGS)
        click.echo(f"{out} is up to date ({len(files)} files)")
        return
    try:
        write(files, out)
    except codegen_.CodegenError as exc:
        fail(str(exc))
    click.echo(f"wrote {len(files)} {language} files to {out}")


@codegen.command("python")
@_contracts_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output package folder (default: generated/python/eventbus_contracts).")
@_check_option
def python(root: Path | None, out: Path | None, check: bool) -> None:
    """Pydantic v2 models and a typed registry for every contract."""
    codegen_ = require_codegen()
    root = root or default_contracts_dir()
    _emit("Python", lambda: codegen_.generate_python(root), codegen_.write_python, codegen_.check_python,
          out or default_python_out(), check, "eventbus codegen python")


@codegen.command("typescript")
@_contracts_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output package folder (default: generated/typescript).")
@click.option("--package-name", default="eventbus-contracts", show_default=True, help="npm package name.")
@_check_option
def typescript(root: Path | None, out: Path | None, package_name: str, check: bool) -> None:
    """An npm package: types, Ajv validators and typed amqplib publish/subscribe (tsc --strict)."""
    codegen_ = require_codegen()
    root = root or default_contracts_dir()
    out = out or default_generated_dir() / "typescript"
    _emit("TypeScript", lambda: codegen_.generate_typescript(root, package_name), codegen_.write_typescript,
          codegen_.check_typescript, out, check, f"eventbus codegen typescript --out {out}")


@codegen.command("go")
@_contracts_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output module folder (default: generated/go).")
@click.option("--module", required=True, help="Go module path, e.g. example.com/acme/contracts.")
@_check_option
def go(root: Path | None, out: Path | None, module: str, check: bool) -> None:
    """A Go module: structs, gojsonschema validation and typed amqp091-go Publish/Subscribe."""
    codegen_ = require_codegen()
    root = root or default_contracts_dir()
    out = out or default_generated_dir() / "go"
    _emit("Go", lambda: codegen_.generate_go(root, module), codegen_.write_go, codegen_.check_go, out, check,
          f"eventbus codegen go --out {out} --module {module}")
