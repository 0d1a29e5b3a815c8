"""An outbox relay process that SIGKILLs itself at a chosen point, for the outbox order test.

    python -m tests.sdk._killable_relay        (environment below; runs until killed or SIGTERM)

RELAY_DATABASE_URL, RELAY_BROKER_URL, RELAY_SERVICE: where to read rows and publish them.
RELAY_KILL: ``<point>:<n>``, the n-th time the relay reaches the point it kills itself:
    claimed    a batch is leased (committed) and nothing of it is published yet
    inflight   a batch's publish has just started (frames may be on the wire, no confirm awaited)
    published  a batch is confirmed by the broker and not yet recorded sent
    recorded   a batch's results are committed (and, while a backlog lasts, the next batch claimed)
or empty: never (the test SIGKILLs it on a timer, or SIGTERMs it at the end).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import timedelta
from typing import Any

from eventbus import BusSettings, EventBus, Outbox, OutboxRelay, create_sql_engine
from eventbus_contracts import REGISTRY


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillableRelay(OutboxRelay):
    """``OutboxRelay`` with a counter at each point of a batch's life."""

    def __init__(self, *args: Any, kill: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        point, _, count = kill.partition(":")
        self.point, self.remaining = point, int(count or 0)

    def _reached(self, point: str) -> bool:
        if point != self.point:
            return False
        self.remaining -= 1
        return self.remaining == 0

    async def _publish_all(self, messages: Any) -> Any:
        if self._reached("claimed"):
            die()
        if self._reached("inflight"):
            asyncio.get_running_loop().call_soon(die)  # after the publish has begun writing
        results = await super()._publish_all(messages)
        if self._reached("published"):
            die()
        return results

    def _tally(self, messages: Any, results: Any) -> None:
        super()._tally(messages, results)
        if self._reached("recorded"):
            die()


async def main() -> None:
    engine = create_sql_engine(os.environ["RELAY_DATABASE_URL"])
    outbox = Outbox(REGISTRY)
    settings = BusSettings(service=os.environ["RELAY_SERVICE"], urls=(os.environ["RELAY_BROKER_URL"],))
    async with EventBus(settings) as bus:
        relay = KillableRelay(
            engine, outbox, bus, batch_size=20, lease=timedelta(seconds=1), poll_interval=0.05,
            kill=os.environ.get("RELAY_KILL", ""),
        )
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, relay.stop)
        print("relay ready", file=sys.stderr, flush=True)
        await relay.run()
    engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
