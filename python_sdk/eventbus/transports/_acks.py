"""Which acks to send, and how few frames can carry them, with no I/O.

One ``basic.ack`` per delivery costs a frame, a write and (in aiormq) a drain future each; the
broker accepts ``multiple=True``, which acks *every* unacked delivery up to a tag on the channel.
That is only safe up to the first delivery that is still being handled, so this window keeps
the open deliveries of one channel in delivery order (tags grow per channel, and deliveries are
handed to handlers in that order) and, when asked, returns:

- one ``(tag, True)`` for the longest processed prefix, and
- one ``(tag, False)`` for each processed delivery behind a slower one, so a slow handler never
  holds back the acks of the others (which would stall the consumer at its prefetch).

A delivery that is nacked, retried or parked leaves the window through ``forget`` before its own
frame goes out, so a later ``multiple`` ack never covers it. Nothing is ever acked that a handler
has not finished with.
"""

from __future__ import annotations

__all__ = ["AckWindow"]


class AckWindow:
    """The open deliveries of one channel: delivery tag → processed (insertion = delivery order)."""

    __slots__ = ("_open", "_processed")

    def __init__(self) -> None:
        self._open: dict[int, bool] = {}
        self._processed = 0

    def received(self, tag: int) -> None:
        self._open[tag] = False

    def processed(self, tag: int) -> None:
        """The handler is done with ``tag``: it may be acked with the next ``take``."""
        if self._open.get(tag) is False:
            self._open[tag] = True
            self._processed += 1

    def forget(self, tag: int) -> None:
        """``tag`` is settled some other way (nack): never cover it with a multiple ack."""
        if self._open.pop(tag, None):
            self._processed -= 1

    @property
    def pending(self) -> int:
        """Processed deliveries whose ack has not been taken yet."""
        return self._processed

    def take(self) -> list[tuple[int, bool]]:
        """The ack frames, as ``(delivery_tag, multiple)``, that settle every processed delivery."""
        if not self._processed:
            return []
        frames: list[tuple[int, bool]] = []
        prefix_end = 0
        for tag, done in self._open.items():
            if not done:
                break
            prefix_end = tag
        if prefix_end:
            while True:
                tag = next(iter(self._open))
                del self._open[tag]
                if tag == prefix_end:
                    break
            frames.append((prefix_end, True))
        stragglers = [tag for tag, done in self._open.items() if done]
        for tag in stragglers:
            del self._open[tag]
            frames.append((tag, False))
        self._processed = 0
        return frames
