"""The public API is exactly ``__all__``, sorted, and every name in it exists."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

import eventbus


def _public(module: ModuleType) -> set[str]:
    """Public names, leaving out subpackages (``eventbus.testing``, ``eventbus.transports``)."""
    return {n for n, v in vars(module).items() if not n.startswith("_") and not isinstance(v, ModuleType)}


def test_all_is_sorted_and_complete() -> None:
    assert eventbus.__all__ == sorted(eventbus.__all__)
    for name in eventbus.__all__:
        assert hasattr(eventbus, name), name
    public = _public(eventbus)
    assert public == set(eventbus.__all__), public ^ set(eventbus.__all__)


@pytest.mark.parametrize("name", ["eventbus.scheduler", "eventbus.sql", "eventbus.testing", "eventbus.transports"])
def test_subpackages_export_what_all_says(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__all__ == sorted(module.__all__)
    for member in module.__all__:
        assert hasattr(module, member), member
    extra = _public(module) - set(module.__all__) - {"annotations", "TYPE_CHECKING", "Any"}
    assert not extra, extra
