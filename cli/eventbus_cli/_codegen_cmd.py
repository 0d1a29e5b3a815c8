"""``eventbus codegen python|typescript|go [--check]``: contracts to bindings, or a drift check."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import click

from ._codegen_import import require_codegen
from ._errors import EXIT_FINDINGS, fail
from ._options import contracts_option, current_project

__all__ = ["codegen"]

Files = Mapping[str, str]

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
            fail(f"{out} is stale: run '{_rerun()}'", EXIT_FINDINGS)
        click.echo(f"{out} is up to date ({len(files)} files)")
        return
    try:
        write(files, out)
    except codegen_.CodegenError as exc:
        fail(str(exc))
    click.echo(f"wrote {len(files)} {language} files to {out}")


def _rerun() -> str:
    """The command that writes what ``--check`` found stale: this one, with the same flags but ``--check``."""
    context = click.get_current_context()
    words = ["eventbus", "codegen", context.info_name or ""]
    for parameter in context.command.params:
        value = context.params.get(parameter.name or "")
        if isinstance(parameter, click.Option) and value not in (None, False) and parameter.name != "check":
            words += [parameter.opts[0], str(value)]
    return " ".join(words)


@codegen.command("python")
@contracts_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The package folder, or the folder to put it in (default: the config's python.out).")
@click.option("--package-name", default=None,
              help="Import name of the package (default: the config's python.package, else the --out folder's name).")
@_check_option
def python(root: Path | None, out: Path | None, package_name: str | None, check: bool) -> None:
    """Pydantic v2 models and a typed registry for every contract (a package of any name)."""
    codegen_ = require_codegen()
    project = current_project()
    target = project.settings.python
    if package_name is not None and not package_name.isidentifier():
        fail(f"--package-name {package_name!r} is not a Python identifier (e.g. acme_contracts)")
    if out is not None and package_name is None and project.source is None:
        package_name = out.name  # no config: --out names the package folder, as it always did
    package = package_name or target.package
    folder = out if out is not None else project.path(target.out)
    if folder.name != package:
        folder = folder / package
    root = root or project.contracts_dir
    _emit("Python", lambda: codegen_.generate_python(root), codegen_.write_python, codegen_.check_python,
          folder, check)


@codegen.command("typescript")
@contracts_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output package folder (default: the config's typescript.out).")
@click.option("--package-name", default=None, help="npm package name (default: the config's typescript.package).")
@_check_option
def typescript(root: Path | None, out: Path | None, package_name: str | None, check: bool) -> None:
    """An npm package: types, Ajv validators and typed amqplib publish/subscribe (tsc --strict)."""
    codegen_ = require_codegen()
    project = current_project()
    root = root or project.contracts_dir
    out = out or project.path(project.settings.typescript.out)
    name = package_name or project.settings.typescript.package
    _emit("TypeScript", lambda: codegen_.generate_typescript(root, name), codegen_.write_typescript,
          codegen_.check_typescript, out, check)


@codegen.command("go")
@contracts_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output module folder (default: the config's go.out).")
@click.option("--module", default=None,
              help="Go module path, e.g. example.com/acme/contracts (default: the config's go.module).")
@_check_option
def go(root: Path | None, out: Path | None, module: str | None, check: bool) -> None:
    """A Go module: structs, gojsonschema validation and typed amqp091-go Publish/Subscribe."""
    codegen_ = require_codegen()
    project = current_project()
    module = module or project.settings.go.module
    if not module:
        fail("no Go module path: pass --module example.com/acme/contracts or set [tool.eventbus.go] module")
    root = root or project.contracts_dir
    out = out or project.path(project.settings.go.out)
    _emit("Go", lambda: codegen_.generate_go(root, module), codegen_.write_go, codegen_.check_go, out, check)
