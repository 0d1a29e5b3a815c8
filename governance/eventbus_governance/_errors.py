"""The errors governance commands raise on purpose (all ``CodegenError``: ``file#/pointer: message``).

    GovernanceError           a path lint or breaking cannot use (missing, outside the tree, not a contract)
    ├── ConfigError           eventbus.toml / [tool.eventbus] that cannot be used
    ├── ConsumersError        contracts/consumers.json that cannot be read
    └── GitRefError           the --against ref, or the repository around the tree, cannot be read
"""

from __future__ import annotations

from eventbus_codegen._errors import CodegenError

__all__ = ["ConfigError", "ConsumersError", "GitRefError", "GovernanceError"]


class GovernanceError(CodegenError):
    """Base of governance errors; the CLI prints one line and exits non-zero."""


class ConfigError(GovernanceError):
    """A governance config that cannot be used; names the file and the key at fault."""


class ConsumersError(GovernanceError):
    """A consumers file that cannot be read; names the file and the pointer at fault."""


class GitRefError(GovernanceError):
    """The git ref to compare against cannot be read (unknown ref, no repository, shallow history)."""
