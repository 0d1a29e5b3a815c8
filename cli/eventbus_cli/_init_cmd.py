"""``eventbus init [DIR]`` and ``eventbus new event TYPE``: a contracts repository, and contracts in it.

``init`` writes the config, a first contract, the consumers file, a CI workflow and pre-commit
hooks running the gate, and the generated bindings of all three languages (when the codegen
extra is installed), so the repository passes its own gate from its first commit. It never
overwrites a file. ``new event`` writes a lint-clean skeleton, or with ``--from`` the next major
of an existing contract (a copy under the new identity, to change as the breaking change needs).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import click
import orjson

from ._codegen_import import require_codegen
from ._errors import fail
from ._options import current_project
from ._project import CONFIG_FILE, load_project
from ._scaffold import (
    ci_workflow,
    config_file,
    next_major,
    parse_event_type,
    pre_commit_config,
    python_package_project,
    readme,
    skeleton,
)

__all__ = ["init", "new"]

_CONSUMERS = '{\n  "version": 1,\n  "consumers": []\n}\n'


def _event_type(text: str) -> str:
    try:
        parse_event_type(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return text


def _write_new(path: Path, text: str) -> None:
    if path.exists():
        fail(f"{path} exists already; nothing was overwritten")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path}")


def _generate_all(folder: Path) -> None:
    """Write the bindings of all three languages, as the config says (the drift check then passes)."""
    try:
        codegen = require_codegen()
    except SystemExit:
        click.echo("note: the codegen extra is not installed (pip install 'eventbus[codegen]'); "
                   "run 'eventbus codegen python|typescript|go' before the first commit", err=True)
        return
    project = load_project(folder / CONFIG_FILE)
    settings, root = project.settings, project.contracts_dir
    targets: list[tuple[Callable[[], object], Callable[..., object], Path]] = [
        (lambda: codegen.generate_python(root), codegen.write_python,
         project.path(settings.python.out) / settings.python.package),
        (lambda: codegen.generate_typescript(root, settings.typescript.package), codegen.write_typescript,
         project.path(settings.typescript.out)),
        (lambda: codegen.generate_go(root, settings.go.module), codegen.write_go, project.path(settings.go.out)),
    ]
    for generate, write, out in targets:
        write(generate(), out)
        click.echo(f"generated {out}")
    packaging = project.path(settings.python.out) / "pyproject.toml"
    if not packaging.exists():
        _write_new(packaging, python_package_project(settings.python.package))


def _slug(text: str, separator: str) -> str:
    """``text`` in lower case words joined by ``separator``, without a trailing 'contracts' word."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    if len(words) > 1 and words[-1] == "contracts":
        words.pop()
    return separator.join(words) or "acme"


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--name", default=None, help="Project name (default: the folder's name).")
@click.option("--base-id", default=None, help="Base URI of every $id (default: https://<name>.example/contracts/).")
@click.option("--event", "first_event", default=None, callback=lambda _c, _p, v: v and _event_type(v),
              help="The first contract, DOMAIN.ENTITY.ACTION.v1 (default: <name>.item.created.v1).")
@click.option("--owner", default=None, help="The owner of the first contract (default: the project name).")
@click.option("--go-module", default=None, help="Go module path (default: example.com/<name>/contracts).")
def init(folder: Path, name: str | None, base_id: str | None, first_event: str | None, owner: str | None,
         go_module: str | None) -> None:
    """Create a contracts repository in FOLDER that passes its own gate (lint, breaking, codegen drift)."""
    folder = folder.resolve()
    name = name or folder.name
    if (folder / CONFIG_FILE).exists() or (folder / "contracts").exists():
        fail(f"{folder} has an {CONFIG_FILE} or a contracts/ folder already; nothing was overwritten")
    base_id = base_id or f"https://{_slug(name, '-')}.example/contracts/"
    if not base_id.endswith("/"):
        base_id += "/"
    event = parse_event_type(first_event or f"{_slug(name, '_')}.item.created.v1")
    _write_new(folder / CONFIG_FILE, config_file(
        name, base_id, python_package=f"{_slug(name, '_')}_contracts", npm_package=f"{_slug(name, '-')}-contracts",
        go_module=go_module or f"example.com/{_slug(name, '-')}/contracts",
    ))
    _write_new(folder / "contracts" / event.path, skeleton(event, base_id, owner or _slug(name, '-')))
    _write_new(folder / "contracts" / "consumers.json", _CONSUMERS)
    _write_new(folder / ".github" / "workflows" / "contracts.yml", ci_workflow())
    _write_new(folder / ".pre-commit-config.yaml", pre_commit_config())
    if not (folder / "README.md").exists():
        _write_new(folder / "README.md", readme(name))
    _generate_all(folder)
    click.echo(f"contracts repository ready in {folder}: edit {event.path}, then 'eventbus contracts lint'")


@click.group()
def new() -> None:
    """Write a new file of the project from a skeleton."""


@new.command("event")
@click.argument("event_type", callback=lambda _c, _p, v: _event_type(v))
@click.option("--from", "previous", default=None, metavar="TYPE",
              help="Start from this existing contract (e.g. the previous major) instead of a skeleton.")
@click.option("--owner", default=None, help="Owner of the event (default: the project's python package's name).")
def event(event_type: str, previous: str | None, owner: str | None) -> None:
    """Write contracts/DOMAIN/ENTITY.ACTION.vN.schema.json: a lint-clean skeleton, or the next major of --from."""
    project = current_project()
    name = parse_event_type(event_type)
    target = project.contracts_dir / name.path
    if previous is None:
        base_id = project.settings.base_id
        if base_id is None:
            fail("no base_id in the project config: set base_id (e.g. 'https://acme.example/contracts/') first")
        _write_new(target, skeleton(name, str(base_id), owner or project.root.name))
        click.echo("now describe it and its fields, then run 'eventbus contracts lint'")
        return
    old = parse_event_type(previous)
    source = project.contracts_dir / old.path
    if not source.is_file():
        fail(f"no contract {previous} at {source}")
    if (old.domain, old.entity, old.action) == (name.domain, name.entity, name.action) and name.major <= old.major:
        fail(f"{event_type} is not a later major than {previous}")
    document = orjson.loads(source.read_bytes())
    _write_new(target, next_major(document, old, name, project.settings.base_id))
    click.echo(f"{previous} stays as it is: producers publish both majors until every consumer of {previous} "
               f"has moved (see 'eventbus contracts breaking')")
