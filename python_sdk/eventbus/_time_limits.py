"""Handler time limits for many concurrent handlers with one timer, not one per call.

``asyncio.timeout`` arms a timer per call (a heap push and a cancelled handle: about 6 µs per
delivery here), and every subscription has a limit by default (``handler_timeout``, 600 s). A
consumer instead registers each running handler's deadline in a dict; one callback, every
``resolution`` seconds while any deadline is registered, cancels the tasks whose time is up, and
the consumer turns that cancellation into a ``HandlerTimeoutError``. Limits are therefore kept to
within ``resolution`` (50 ms), which is far finer than any sensible limit.

Like ``asyncio.timeout``, a cancellation that is ours is undone with ``Task.uncancel``, and one
that came from elsewhere (shutdown cancelling in-flight handlers) is left to propagate.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["TimeLimits"]

Task = asyncio.Task[Any]


class TimeLimits:
    """Deadlines of running handler tasks, enforced by one periodic callback."""

    def __init__(self, loop: asyncio.AbstractEventLoop, resolution: float = 0.05) -> None:
        self._loop = loop
        self._resolution = resolution
        self._deadlines: dict[Task, float] = {}
        self._expired: set[Task] = set()
        self._timer: asyncio.TimerHandle | None = None

    def start(self, task: Task, seconds: float) -> int:
        """``task`` runs a handler limited to ``seconds``; returns the token ``finish`` needs."""
        self._deadlines[task] = self._loop.time() + seconds
        if self._timer is None:
            self._timer = self._loop.call_later(self._resolution, self._check)
        return task.cancelling()

    def finish(self, task: Task, token: int) -> bool:
        """The handler of ``task`` ended; True when it was cancelled because its time was up."""
        del self._deadlines[task]
        if task not in self._expired:
            return False
        self._expired.discard(task)
        return task.uncancel() <= token

    def _check(self) -> None:
        self._timer = None
        if not self._deadlines:
            return
        now = self._loop.time()
        for task, deadline in self._deadlines.items():
            if deadline <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
        self._timer = self._loop.call_later(self._resolution, self._check)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
