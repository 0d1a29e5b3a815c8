"""What broker tests keep asking: how many messages wait in a queue, and "wait until this holds"."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pika

__all__ = ["queue_depth", "until"]


def queue_depth(url: str, queue: str) -> int:
    """Ready messages in ``queue`` (a passive declare on a connection of its own)."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        connection.close()


async def until(predicate: Callable[[], bool], timeout: float = 20.0, interval: float = 0.02) -> None:
    """Wait until ``predicate()`` holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(interval)
