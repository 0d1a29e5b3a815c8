"""The public API of ``eventbus_governance`` and its subpackages is what ``__all__`` says, sorted."""

from __future__ import annotations

from types import ModuleType

import pytest

import eventbus_governance as governance
import eventbus_governance.breaking as breaking
import eventbus_governance.catalog as catalog
import eventbus_governance.lint as lint


@pytest.mark.parametrize("package", [governance, breaking, catalog, lint], ids=lambda p: p.__name__)
def test_all_is_sorted_and_matches_the_public_names(package: ModuleType) -> None:
    public = {
        name for name, value in vars(package).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }

    assert package.__all__ == sorted(package.__all__)
    assert set(package.__all__) == public
