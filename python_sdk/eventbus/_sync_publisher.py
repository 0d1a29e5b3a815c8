"""Confirmed publishing for the blocking shell: the asyncio publisher on a private loop thread.

Why not pika: pika's ``BlockingChannel`` waits for each confirm before it sends the next publish
(about 700 msg/s here, DESIGN §8), and it answers heartbeats only while a call is running. The
SDK's own ``AsyncPublisher``, run on an event loop in a daemon thread, gives the blocking API
the same pipelined confirms, confirm timeouts, reconnects and errors as the async bus (one
implementation of publishing, not two), and keeps the connection's heartbeats going while the
application does something else.

Any thread may call; each call hands a coroutine to the loop and waits for its result. The
thread starts on first use, and again in a child process after ``os.fork()`` (a child does not
inherit the parent's threads).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from ._amqp import Properties
from ._async_publisher import AsyncPublisher
from ._outgoing import OutgoingMessage
from ._settings import BusSettings

__all__ = ["SyncPublisher"]

T = TypeVar("T")
_CLOSE_TIMEOUT = 10.0


class SyncPublisher:
    """Blocking calls onto an ``AsyncPublisher`` that lives on its own event loop thread."""

    def __init__(self, settings: BusSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._publisher: AsyncPublisher | None = None
        self._pid = 0

    def _runner(self) -> tuple[asyncio.AbstractEventLoop, AsyncPublisher]:
        with self._lock:
            if self._loop is None or self._publisher is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name=f"eventbus-publish-{self._settings.service}", daemon=True
                )
                thread.start()
                self._loop, self._thread, self._pid = loop, thread, os.getpid()
                self._publisher = AsyncPublisher(self._settings)
            return self._loop, self._publisher

    def _call(self, work: Callable[[AsyncPublisher], Coroutine[Any, Any, T]]) -> T:
        loop, publisher = self._runner()
        future = asyncio.run_coroutine_threadsafe(work(publisher), loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # interrupted while waiting (KeyboardInterrupt): do not leave it running
            raise

    def ensure_exchange(self, name: str) -> None:
        self._call(lambda publisher: publisher.ensure_exchange(name))

    def publish_messages(self, messages: Sequence[OutgoingMessage], *, ticks: int | None, window: int) -> None:
        """``AsyncPublisher.publish_messages``, blocking: confirmed, or it raises."""
        self._call(lambda publisher: publisher.publish_messages(messages, ticks=ticks, window=window))

    def send(self, *, body: bytes, exchange: str, routing_key: str, properties: Properties) -> None:
        self._call(lambda publisher: publisher.send(body=body, exchange=exchange, routing_key=routing_key,
                                                    properties=properties))

    def send_delayed(self, *, body: bytes, ticks: int, target: str, properties: Properties) -> None:
        self._call(lambda publisher: publisher.send_delayed(body=body, ticks=ticks, target=target,
                                                            properties=properties))

    def close(self) -> None:
        """Close the connection and stop the thread (a no-op when nothing was published)."""
        with self._lock:
            loop, thread, publisher = self._loop, self._thread, self._publisher
            self._loop = self._thread = self._publisher = None
            if self._pid != os.getpid():
                return  # a forked child: the parent's thread is not ours to stop
        if loop is None or thread is None or publisher is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(publisher.close(), loop).result(timeout=_CLOSE_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=_CLOSE_TIMEOUT)
        if not thread.is_alive():
            loop.close()
