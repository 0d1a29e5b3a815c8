"""The public API is exactly ``__all__``, sorted, and every name in it exists."""

from __future__ import annotations

import eventbus


def test_all_is_sorted_and_complete() -> None:
    assert eventbus.__all__ == sorted(eventbus.__all__)
    for name in eventbus.__all__:
        assert hasattr(eventbus, name), name
    public = {n for n in vars(eventbus) if not n.startswith("_")}
    assert public == set(eventbus.__all__), public ^ set(eventbus.__all__)
