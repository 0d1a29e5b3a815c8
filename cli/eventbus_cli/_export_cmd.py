"""``eventbus contracts export MODULE:ATTR``: the tasks of a bus as contract files, and the drift check.

The tasks' JSON Schemas (``@bus.task``) go to ``<contracts>/tasks/<service>.<task>.vN.schema.json``
in the house style, so they pass ``eventbus contracts lint``, ``breaking`` and codegen like any
contract. ``--check`` writes nothing: it prints a unified diff and exits 1 when the code and the
exported files disagree (a task changed, added, or gone since the last export), for CI.
"""

from __future__ import annotations

import asyncio
import difflib
import json
from pathlib import Path
from typing import Any

import click

from eventbus.tasks import task_documents

from ._errors import EXIT_FINDINGS, fail
from ._loader import LoadError, load_bus
from ._options import current_project

__all__ = ["export"]

_SUFFIX = ".schema.json"


def _render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _base_id(contracts_dir: Path, configured: str | None) -> str:
    """The project's ``base_id``; else the base the existing contracts share (as lint infers it)."""
    if configured:
        return configured
    for path in sorted(contracts_dir.rglob(f"*{_SUFFIX}")):
        try:
            schema_id = json.loads(path.read_text(encoding="utf-8")).get("$id")
        except (OSError, ValueError, AttributeError):
            continue
        relative = path.relative_to(contracts_dir).as_posix()
        if isinstance(schema_id, str) and schema_id.endswith("/" + relative):
            return schema_id[: -len(relative)]
    fail("no base_id: set base_id in the project config (docs/project-config.md) or pass --base-id")
    raise AssertionError  # unreachable: fail() exits


def _diff(old: str | None, new: str | None, label: str) -> str:
    fromfile = f"a/{label}" if old is not None else "/dev/null"
    tofile = f"b/{label}" if new is not None else "/dev/null"
    lines = difflib.unified_diff((old or "").splitlines(keepends=True), (new or "").splitlines(keepends=True),
                                 fromfile=fromfile, tofile=tofile)
    return "".join(lines)


def _label(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


@click.command("export")
@click.argument("target")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Contracts folder to write into (default: the project config's 'contracts', else contracts/).")
@click.option("--base-id", default=None, help="Base URI of every $id (default: the project config's base_id).")
@click.option("--check", is_flag=True, help="Write nothing; print a diff and exit 1 when the files are out of date.")
def export(target: str, out: Path | None, base_id: str | None, check: bool) -> None:
    """Write the JSON Schemas of the tasks of the bus at TARGET (MODULE[:ATTR]) into the contracts folder."""
    project = current_project()
    contracts_dir = out or project.contracts_dir
    try:
        bus = asyncio.run(load_bus(target))
    except LoadError as exc:
        fail(str(exc))
        raise  # unreachable
    tasks = bus.tasks
    if not tasks:
        fail(f"{target} has no tasks (@bus.task) to export")
    base = _base_id(contracts_dir, base_id or project.settings.base_id)
    documents = task_documents(((t.contract, t.examples) for t in tasks), base)
    files = {path: _render(document) for path, document in documents.items()}
    # Files of this service's tasks that no task makes any more are stale (other services' are not ours).
    domain = next(iter(files)).split("/", 1)[1].split(".", 1)[0]
    folder = contracts_dir / "tasks"
    on_disk = {f"tasks/{p.name}" for p in folder.glob(f"{domain}.*{_SUFFIX}")} if folder.is_dir() else set()
    changes = []
    for relative in sorted(set(files) | on_disk):
        path = contracts_dir / relative
        old = path.read_text(encoding="utf-8") if path.is_file() else None
        new = files.get(relative)
        if old != new:
            changes.append((path, old, new))
    if check:
        for path, old, new in changes:
            click.echo(_diff(old, new, _label(path)), nl=False)
        if changes:
            fail(f"{len(changes)} task contract(s) out of date: run 'eventbus contracts export {target}'",
                 EXIT_FINDINGS)
        click.echo(f"{len(files)} task contract(s) up to date in {contracts_dir}")
        return
    for path, _, new in changes:
        if new is None:
            path.unlink()
            click.echo(f"removed {path}")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(new, encoding="utf-8")
            click.echo(f"wrote {path}")
    click.echo(f"{len(files)} task contract(s) in {contracts_dir} ({len(changes)} changed)")
