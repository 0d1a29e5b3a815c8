"""Options shared by the commands: the broker's URL, the service name, the project and its contracts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from eventbus import DEFAULT_URL

from ._errors import fail
from ._project import ConfigFileError, Project, load_project

if TYPE_CHECKING:
    from eventbus import ContractRegistry

__all__ = ["contracts_option", "current_project", "project_registry", "service_option", "url_option"]

url_option = click.option(
    "--url",
    envvar="EVENTBUS_URL",
    default=DEFAULT_URL,
    show_default="EVENTBUS_URL or the local RabbitMQ",
    help="AMQP URL of the broker.",
)
service_option = click.option(
    "--service",
    envvar="EVENTBUS_SERVICE",
    default="eventbus-cli",
    show_default=True,
    help="Service name: the CloudEvents source and the prefix of queue names.",
)
contracts_option = click.option(
    "--contracts", "root", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Contracts folder (default: the project config's 'contracts', else contracts/).",
)

_PROJECT_KEY = "eventbus.project"


def current_project() -> Project:
    """The project of ``eventbus --config FILE`` (or the nearest config file), read once per command."""
    context = click.get_current_context().find_root()
    project = context.meta.get(_PROJECT_KEY)
    if not isinstance(project, Project):
        try:
            project = load_project((context.params or {}).get("config_file"))
        except ConfigFileError as exc:
            fail(str(exc))
            raise  # unreachable: fail() exits
        context.meta[_PROJECT_KEY] = project
    return project


def project_registry(root: Path | None = None) -> ContractRegistry:
    """The event contracts the command works with: ``--contracts DIR``, else the configured folder."""
    from eventbus import ContractError, load_schema_contracts

    folder = root if root is not None else current_project().contracts_dir
    if not folder.is_dir():
        where = "" if root is not None else f" ({current_project().origin})"
        fail(f"no contracts folder {folder}{where}: work inside a contracts repository ('eventbus init' makes one), "
             "or pass --contracts DIR or 'eventbus --config FILE'")
    try:
        return load_schema_contracts(root) if root is not None else current_project().registry
    except ContractError as exc:
        fail(f"{exc} (contracts: {root or current_project().describe()})")
        raise  # unreachable: fail() exits
