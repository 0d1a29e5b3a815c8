"""Find a service's bus from ``MODULE[:ATTR]``, the way ``uvicorn module:app`` finds an app.

ATTR (default ``bus``, dotted paths allowed) is an ``EventBus`` or ``SyncEventBus``, or a
callable that returns one (a factory, sync or async). The current directory is importable,
so ``eventbus worker service.app:bus`` works from the project root.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Any

from eventbus import EventBus, SyncEventBus

__all__ = ["LoadError", "load_bus"]

AnyBus = EventBus | SyncEventBus


class LoadError(Exception):
    """MODULE[:ATTR] does not lead to a bus; the message says why, in one line."""


def _attribute(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    if not module_name:
        raise LoadError(f"expected MODULE[:ATTR], got {target!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise LoadError(f"cannot import {module_name!r}: {exc}") from None
    value: Any = module
    for part in (attr or "bus").split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise LoadError(f"module {module_name!r} has no attribute {attr or 'bus'!r}") from None
    return value


async def load_bus(target: str) -> AnyBus:
    """The bus at ``target``, calling (and awaiting) a factory if that is what it names."""
    value = _attribute(target)
    if not isinstance(value, EventBus | SyncEventBus) and callable(value):
        try:
            value = value()
            if inspect.isawaitable(value):
                value = await value
        except Exception as exc:
            raise LoadError(f"calling {target} failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(value, EventBus | SyncEventBus):
        raise LoadError(f"{target} is a {type(value).__name__}, not an EventBus or SyncEventBus (or a factory of one)")
    return value
