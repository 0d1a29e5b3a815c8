"""``eventbus contracts lint`` and ``eventbus contracts breaking``: the governance verbs, kept apart as in buf.

Both print findings as ``path:line:col RULE message`` (or ``--format json|github``) and exit 1
when there is something to fix; any other failure (unknown ref, bad config) is one line on
stderr and exit 1 too, so CI fails either way. Non-text formats print nothing but the findings.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import click

from ._codegen_import import require_codegen
from ._errors import EXIT_FINDINGS, fail
from ._options import current_project

__all__ = ["breaking", "lint"]

FORMATS = ("text", "json", "github")
F = TypeVar("F", bound=Callable[..., Any])


def _governance() -> ModuleType:
    """The governance package, once the codegen extra is known to be installed."""
    require_codegen()
    import eventbus_governance as governance

    return governance


def _run(root: Path | None, config_file: Path | None, check: Callable[[Path, Any], list[Any]]) -> tuple[Any, list[Any]]:
    """Load the config beside the contracts tree and run ``check``; any governance error is one line."""
    governance = _governance()
    project = current_project()
    try:
        if root is None and config_file is None and project.source is not None:
            root = project.contracts_dir  # the project's contracts under the project's config
            config = governance.load_config(project.root, project.source)
        else:
            root = root or project.contracts_dir  # a folder of its own: the config beside it
            config = governance.load_config(root.parent, config_file)
        return config, check(root, config)
    except require_codegen().CodegenError as exc:
        fail(str(exc))
        raise  # unreachable: fail() exits


def _common(command: F) -> F:
    """The options lint and breaking share."""
    options = [
        click.option("--contracts", "root", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Contracts folder (default: the project config's 'contracts', else contracts/)."),
        click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Governance config file (default: the project config, 'eventbus --config' or the nearest)."),
        click.option("--format", "output_format", type=click.Choice(FORMATS), default="text", show_default=True,
                     help="text: path:line:col RULE message; json; github: workflow annotations."),
        click.option("--list-rules", is_flag=True, help="Print every rule id with its purpose and exit."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command("lint")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@_common
def lint(paths: tuple[Path, ...], root: Path | None, config_file: Path | None, output_format: str,
         list_rules: bool) -> None:
    """Check contracts against the lint rules (all of contracts/, or only PATHS)."""
    governance = _governance()
    if list_rules:
        _print_rules(governance.LINT_RULES)
        return
    config, findings = _run(root, config_file, lambda root, config: governance.lint_contracts(root, paths, config))
    _print(governance, findings, output_format)
    if findings:
        fail(f"{len(findings)} lint finding(s)", EXIT_FINDINGS)
    if output_format == "text":
        click.echo(f"no lint findings ({len(governance.LINT_RULES) - len(config.lint.disable)} rules)")


@click.command("breaking")
@click.option("--against", "ref", metavar="GIT_REF", default=None,
              help="Compare with the contracts at this git ref (a branch, tag, commit, HEAD~1, ...).")
@click.option("--all", "show_all", is_flag=True, help="Also list the changes that break nobody.")
@_common
def breaking(ref: str | None, show_all: bool, root: Path | None, config_file: Path | None, output_format: str,
             list_rules: bool) -> None:
    """Report every contract change since GIT_REF and fail on those that break consumers or producers."""
    governance = _governance()
    if list_rules:
        _print_rules(governance.BREAKING_RULES)
        return
    if ref is None:
        fail("missing --against GIT_REF (e.g. --against main or --against HEAD~1)")
    _, findings = _run(root, config_file, lambda root, config: governance.check_breaking(root, ref, config))
    failing = [finding for finding in findings if finding.is_error]
    _print(governance, findings if show_all else failing, output_format)
    if failing:
        fail(f"{len(failing)} breaking change(s) against {ref}", EXIT_FINDINGS)
    if output_format == "text":
        click.echo(f"no breaking changes against {ref} ({len(findings)} change(s) checked)")


def _print(governance: ModuleType, findings: list[Any], output_format: str) -> None:
    if findings or output_format == "json":
        click.echo(governance.render_findings(findings, output_format, relative_to=Path.cwd()), nl=False)


def _print_rules(rules: tuple[Any, ...]) -> None:
    width = max(len(entry.id) for entry in rules)
    for entry in rules:
        click.echo(f"{entry.id.ljust(width)}  {entry.purpose}")
