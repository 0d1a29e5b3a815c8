"""An event loop on a daemon thread, for the blocking facades over the asyncio code.

``SyncEventBus`` and ``DeadLetters`` are blocking APIs over the same async core as ``EventBus``
(one AMQP client, one implementation of publishing, consuming and settling). Each owns one of
these: any thread may call, each call hands a coroutine to the loop and waits for its result,
and the loop keeps the connections' heartbeats going while the application does something else
(the trap of pika#93 cannot happen: no I/O runs in the caller's thread).

The thread starts on first use. After ``os.fork()`` the child does not inherit it (a child has
the forking thread only), so ``forked`` tells the owner to start over with new connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["LoopThread"]

T = TypeVar("T")
_CLOSE_TIMEOUT = 10.0


class LoopThread:
    """``call(coroutine)`` runs it on the private loop and returns its result (or raises its error)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    @property
    def forked(self) -> bool:
        """True in a child process forked after the loop started: the parent's loop is not here."""
        return self._pid != os.getpid()

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                thread.start()
                self._loop, self._thread, self._pid = loop, thread, os.getpid()
            return self._loop

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        """Start ``coroutine`` on the loop; the caller may wait for the future or not."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop())

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._thread is not None and threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("a blocking call from the bus's own event-loop thread would wait for itself; "
                               "call it from a sync handler or hook (they run in threads), or use EventBus")
        future = self.submit(coroutine)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # interrupted while waiting (KeyboardInterrupt): do not leave it running
            raise

    def close(self, last: Coroutine[Any, Any, Any] | None = None) -> None:
        """Run ``last`` (closing connections, say), then stop the loop and its thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
            if self._pid != os.getpid():
                loop = thread = None  # a forked child: the parent's thread is not ours to stop
        if loop is None or thread is None:
            if last is not None:
                last.close()  # never started: nothing to close
            return
        if last is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(last, loop).result(timeout=_CLOSE_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=_CLOSE_TIMEOUT)
        if not thread.is_alive():
            loop.close()
