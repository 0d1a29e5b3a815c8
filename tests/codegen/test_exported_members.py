"""The public API of ``eventbus_codegen`` is what ``__all__`` says, sorted."""

from __future__ import annotations

import eventbus_codegen


def test_all_is_sorted_and_matches_the_public_names() -> None:
    public = {name for name in vars(eventbus_codegen) if not name.startswith("_")}
    public -= {"go", "python", "typescript"}  # the target subpackages, imported by __init__

    assert eventbus_codegen.__all__ == sorted(eventbus_codegen.__all__)
    assert set(eventbus_codegen.__all__) == public
