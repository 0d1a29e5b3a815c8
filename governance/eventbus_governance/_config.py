"""The governance config: which lint and breaking rules run, versioned and declarative (as buf.yaml).

It lives at the repository root, in ``eventbus.toml`` or under ``[tool.eventbus]`` in
``pyproject.toml`` (never both: two sources of truth would disagree one day)::

    [tool.eventbus]
    version = 1

    [tool.eventbus.lint]
    disable = ["ENUM_VALUES_SNAKE_CASE"]   # rule ids
    ignore = ["contracts/legacy"]          # files or folders, relative to the repository root

    [tool.eventbus.breaking]
    disable = []

The same table holds the project settings the command line reads (``contracts``, ``base_id``,
``python``, ``typescript``, ``go``: see ``eventbus_cli._project``); of those, governance uses
``base_id``, the URI every ``$id`` must start with (lint's ``ID_MATCHES_PATH``).
A typo is an error, not a silently ignored key: unknown keys and unknown rule ids are rejected.
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ._errors import ConfigError

__all__ = ["CONFIG_FILE", "GovernanceConfig", "load_config"]

CONFIG_FILE = "eventbus.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    disable: tuple[str, ...] = ()


class LintConfig(_Section):
    ignore: tuple[str, ...] = ()


class BreakingConfig(_Section):
    pass


class _ConfigFile(BaseModel):
    """What the file may say: config version 1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    lint: LintConfig = LintConfig()
    breaking: BreakingConfig = BreakingConfig()
    base_id: str | None = None
    # the project settings of the command line, checked there (eventbus_cli._project)
    contracts: str | None = None
    python: dict[str, Any] | None = None
    typescript: dict[str, Any] | None = None
    go: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class GovernanceConfig:
    """The rules' settings, the file they came from (``None``: defaults) and the repository root."""

    lint: LintConfig = field(default_factory=LintConfig)
    breaking: BreakingConfig = field(default_factory=BreakingConfig)
    source: Path | None = None
    root: Path | None = None
    base_id: str | None = None

    def check_rule_ids(self, section: str, known: Collection[str]) -> None:
        """Raise ``ConfigError`` for a disabled rule id that does not exist in ``known``."""
        disabled = getattr(self, section).disable
        for index, rule in enumerate(disabled):
            if rule not in known:
                raise ConfigError(
                    self.source or Path(CONFIG_FILE),
                    f"{self._prefix}/{section}/disable/{index}",
                    f"unknown {section} rule {rule!r} (see 'eventbus contracts {section} --list-rules')",
                )

    def is_ignored(self, path: Path) -> bool:
        """Whether lint skips ``path`` (a file under one of the ``lint.ignore`` entries)."""
        if self.root is None or not self.lint.ignore:
            return False
        try:
            relative = PurePosixPath(path.resolve().relative_to(self.root.resolve()).as_posix())
        except ValueError:
            return False
        return any(relative == PurePosixPath(entry) or PurePosixPath(entry) in relative.parents
                   for entry in self.lint.ignore)

    @property
    def _prefix(self) -> str:
        return "/tool/eventbus" if self.source is not None and self.source.name == "pyproject.toml" else ""


def load_config(repo_root: Path, config_file: Path | None = None) -> GovernanceConfig:
    """The config at ``repo_root`` (or in ``config_file``); the defaults when there is none."""
    if config_file is not None:
        table = _read_toml(config_file)
        if config_file.name == "pyproject.toml":
            table = table.get("tool", {}).get("eventbus", {})
        return _parse(table, config_file, repo_root)
    own = repo_root / CONFIG_FILE
    pyproject = repo_root / "pyproject.toml"
    section = _read_toml(pyproject).get("tool", {}).get("eventbus") if pyproject.is_file() else None
    if own.is_file():
        if section is not None:
            message = f"governance config in both {CONFIG_FILE} and pyproject.toml [tool.eventbus]; keep one"
            raise ConfigError(pyproject, "/tool/eventbus", message)
        return _parse(_read_toml(own), own, repo_root)
    if section is not None:
        return _parse(section, pyproject, repo_root)
    return GovernanceConfig(root=repo_root)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read config: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"invalid TOML: {exc}") from None


def _parse(table: Any, source: Path, root: Path) -> GovernanceConfig:
    prefix = "/tool/eventbus" if source.name == "pyproject.toml" else ""
    if not isinstance(table, dict):
        raise ConfigError(source, prefix, "the governance config must be a table")
    if "version" not in table:
        raise ConfigError(source, f"{prefix}/version", "missing version (the only version is 1)")
    try:
        parsed = _ConfigFile.model_validate(table)
    except ValidationError as exc:
        error = exc.errors()[0]
        pointer = prefix + "".join(f"/{part}" for part in error["loc"])
        raise ConfigError(source, pointer, error["msg"]) from None
    return GovernanceConfig(parsed.lint, parsed.breaking, source, root, parsed.base_id)
