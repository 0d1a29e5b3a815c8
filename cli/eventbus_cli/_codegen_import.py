"""The code generator is an optional extra: load it only for the commands that need it."""

from __future__ import annotations

from types import ModuleType

from ._errors import fail

__all__ = ["require_codegen"]


def require_codegen() -> ModuleType:
    """``eventbus_codegen``, or a one-line error that says which extra to install."""
    try:
        import eventbus_codegen
    except ImportError as exc:
        fail(f"this command needs the code generator: pip install 'eventbus[codegen]' ({exc.name} is missing)")
        raise  # unreachable: fail() exits
    return eventbus_codegen
