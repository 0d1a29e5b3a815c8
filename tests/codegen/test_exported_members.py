"""The public API of ``eventbus_codegen`` is what ``__all__`` says, sorted."""

from __future__ import annotations

from types import ModuleType

import eventbus_codegen


def test_all_is_sorted_and_matches_the_public_names() -> None:
    # Subpackages (python, governance, ...) become attributes once imported; they are not re-exports.
    public = {
        name for name, value in vars(eventbus_codegen).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }

    assert eventbus_codegen.__all__ == sorted(eventbus_codegen.__all__)
    assert set(eventbus_codegen.__all__) == public
