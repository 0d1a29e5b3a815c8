"""The work of one chord in ``bench/chord.py``, the same for eventbus and Celery.

A member validates its input ``{"n": n}`` with a pydantic model and returns ``{"n": n, "square": n * n}``;
the callback validates every result with a pydantic model, checks that there are ``count`` of them in
member order with the right squares, and pushes ``{"t": wall clock, "count": ..., "ok": ...}`` to a Redis
list: the harness's ``BLPOP`` on that list is "the callback has run". eventbus validates a task's input
against the contract made from its signature, which is the same model as ``Number`` here.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis
from pydantic import BaseModel, ConfigDict


class Number(BaseModel):
    """A member's input."""

    model_config = ConfigDict(extra="forbid")
    n: int


class Squared(BaseModel):
    """A member's result."""

    model_config = ConfigDict(extra="forbid")
    n: int
    square: int


def square_of(payload: dict[str, Any]) -> dict[str, int]:
    """The member's work for Celery: validate, square, return plain JSON."""
    n = Number.model_validate(payload).n
    return {"n": n, "square": n * n}


def check_results(results: list[Any], count: int) -> bool:
    """True when ``results`` are ``count`` valid ``Squared`` in member order."""
    parsed = [r if isinstance(r, Squared) else Squared.model_validate(r) for r in results]
    return len(parsed) == count and all(r.n == i and r.square == i * i for i, r in enumerate(parsed))


def signal_done(redis_url: str, key: str, count: int, ok: bool) -> None:
    """Tell the harness the callback ran (and whether its results were right)."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.rpush(key, json.dumps({"t": time.time(), "count": count, "ok": ok}))
        client.expire(key, 3600)
    finally:
        client.close()
