"""The project config: where a contracts repository keeps its contracts and what it generates, under which names.

One table, versioned, in ``eventbus.toml`` or under ``[tool.eventbus]`` in ``pyproject.toml`` (never
both), found by walking up from the working directory (``--config FILE`` or ``EVENTBUS_CONFIG``
point elsewhere)::

    [tool.eventbus]
    version = 1
    contracts = "contracts"                        # folder of the JSON Schemas, relative to this file
    base_id = "https://acme.example/contracts/"    # every $id starts with it (lint: ID_MATCHES_PATH)

    [tool.eventbus.python]
    package = "acme_contracts"                     # import name of the generated package
    out = "generated/python"                       # the folder that holds the package

    [tool.eventbus.typescript]
    package = "@acme/contracts"
    out = "generated/typescript"

    [tool.eventbus.go]
    module = "example.com/acme/contracts"
    out = "generated/go"

``lint`` and ``breaking`` are the governance tables (docs/governance.md). Unknown keys are errors,
as everywhere in this config: a typo must not silently fall back to a default. Flags on the command
line override what the file says.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    from eventbus import ContractRegistry

__all__ = ["CONFIG_FILE", "ConfigFileError", "Project", "find_config", "load_project"]

CONFIG_FILE = "eventbus.toml"
CONFIG_ENV = "EVENTBUS_CONFIG"
_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"


class ConfigFileError(Exception):
    """The config file cannot be used; the message is ``file#/pointer: message``, as governance's."""


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PythonTarget(_Table):
    package: str = Field(default="contracts", pattern=_IDENTIFIER)
    out: str = "generated/python"


class TypeScriptTarget(_Table):
    package: str = "contracts"
    out: str = "generated/typescript"


class GoTarget(_Table):
    module: str | None = None
    out: str = "generated/go"


class _ProjectFile(_Table):
    """What the table may say: config version 1."""

    version: Literal[1]
    contracts: str = "contracts"
    base_id: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9+.-]*://.+/$")
    python: PythonTarget = PythonTarget()
    typescript: TypeScriptTarget = TypeScriptTarget()
    go: GoTarget = GoTarget()
    lint: dict[str, Any] = {}  # checked by the governance loader (eventbus_governance)
    breaking: dict[str, Any] = {}


@dataclass(frozen=True)
class Project:
    """The parsed config and the folder it is relative to (the working directory when there is none)."""

    root: Path
    settings: _ProjectFile
    source: Path | None = None

    @property
    def contracts_dir(self) -> Path:
        return self.root / self.settings.contracts

    def path(self, relative: str) -> Path:
        return self.root / relative

    @cached_property
    def registry(self) -> ContractRegistry:
        """The event contracts of the contracts folder, read at run time (``eventbus.load_schema_contracts``)."""
        from eventbus import load_schema_contracts

        return load_schema_contracts(self.contracts_dir)

    @property
    def origin(self) -> str:
        """Where the settings come from, for error messages."""
        return f"config {self.source}" if self.source else "no eventbus.toml or [tool.eventbus] found"

    def describe(self) -> str:
        """Where the contracts come from, for error messages."""
        return f"{self.contracts_dir} ({self.origin})"


def _tool_table(pyproject: Path) -> dict[str, Any] | None:
    table = _read(pyproject).get("tool", {}).get("eventbus")
    return table if isinstance(table, dict) else None


def find_config(start: Path) -> Path | None:
    """The nearest ``eventbus.toml``, or ``pyproject.toml`` with ``[tool.eventbus]``, from ``start`` upwards."""
    start = start.resolve()
    for folder in (start, *start.parents):
        own, pyproject = folder / CONFIG_FILE, folder / "pyproject.toml"
        if own.is_file():
            return own
        if pyproject.is_file() and _tool_table(pyproject) is not None:
            return pyproject
    return None


def load_project(config_file: Path | None = None, start: Path | None = None) -> Project:
    """The project of ``config_file`` (else ``EVENTBUS_CONFIG``, else the nearest config); defaults without one."""
    if config_file is None and os.environ.get(CONFIG_ENV):
        config_file = Path(os.environ[CONFIG_ENV])
    if config_file is None:
        config_file = find_config(start or Path.cwd())
        if config_file is None:
            return Project((start or Path.cwd()).resolve(), _ProjectFile(version=1))
    if not config_file.is_file():
        raise ConfigFileError(f"{config_file}: no such config file")
    config_file = config_file.resolve()
    pyproject = config_file.parent / "pyproject.toml"
    both = config_file.parent / CONFIG_FILE
    if both.is_file() and pyproject.is_file() and _tool_table(pyproject) is not None:
        raise ConfigFileError(f"{pyproject.as_posix()}#/tool/eventbus: config in both {CONFIG_FILE} and "
                              "pyproject.toml [tool.eventbus]; keep one")
    if config_file.name == "pyproject.toml":
        table: Any = _tool_table(config_file)
        if table is None:
            raise ConfigFileError(f"{config_file.as_posix()}: no [tool.eventbus] table")
        prefix = "/tool/eventbus"
    else:
        table, prefix = _read(config_file), ""
    if "version" not in table:
        raise ConfigFileError(f"{config_file.as_posix()}#{prefix}/version: missing version (the only version is 1)")
    try:
        settings = _ProjectFile.model_validate(table)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        pointer = prefix + "".join(f"/{part}" for part in error["loc"])
        raise ConfigFileError(f"{config_file.as_posix()}#{pointer}: {error['msg']}") from None
    return Project(config_file.parent, settings, config_file)


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigFileError(f"{path.as_posix()}: cannot read config: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{path.as_posix()}: invalid TOML: {exc}") from None
