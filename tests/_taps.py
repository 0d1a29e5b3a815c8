"""Reading a tap queue on the shared broker: other tests publish there too, so filter."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def take_matching(raw: Any, queue: str, wanted: Callable[[Any], bool], count: int, timeout: float = 15.0) -> list[Any]:
    """Messages from ``queue`` that ``wanted`` accepts, until ``count`` of them or ``timeout``; then
    whatever else of ours is already there (so a test sees extra copies instead of missing them)."""
    found: list[Any] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = raw.get(queue, 1, timeout=0.2)
        found.extend(m for m in batch if wanted(m))
        if len(found) >= count and not batch:
            break
    return found
