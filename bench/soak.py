"""Consumer memory over time: an SDK consumer in its own process, fed at a steady rate.

    .venv/bin/python bench/soak.py [--seconds 600] [--rate 1000]

The consumer process (``--consumer``) reports its resident set size every 10 s; the parent
publishes at ``--rate`` with the SDK on the private exchange and prints the RSS series, so
unbounded growth (a leak per message) shows as a rising line. The queue is deleted at the end.
The consumer imports what a service using ``EventBus`` imports, nothing of the harness's peers
(aio-pika, pika: ``bench/run.py`` is imported by the parent only).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._payload import CONTRACT, PREFETCH, URL, WINDOW, BenchConversationEnded, make_events  # noqa: E402
from eventbus import BusSettings, EventBus, EventContext  # noqa: E402

SERVICE = "bench-soak"
QUEUE = f"{SERVICE}.{CONTRACT.type}"


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _settings() -> BusSettings:
    return BusSettings(service=SERVICE, urls=(URL,), prefetch=PREFETCH, publish_window=WINDOW)


async def consumer(seconds: float) -> None:
    bus = EventBus(_settings())
    seen = 0

    @bus.subscribe(BenchConversationEnded)
    async def handle(event: BenchConversationEnded, ctx: EventContext) -> None:
        nonlocal seen
        seen += 1

    await bus.start()
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        await asyncio.sleep(10)
        print(f"{time.monotonic() - started:6.0f} s  {seen:9d} handled  RSS {_rss_mb():6.1f} MB", flush=True)
    await bus.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--consumer", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.consumer:
        await consumer(args.seconds)
        return
    from bench.run import _delete_queue, _fresh_queue  # the harness's helpers: parent process only

    await _fresh_queue(QUEUE)
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__)), "--consumer", "--seconds", str(args.seconds + 10))
    events = make_events(args.rate)
    bus = EventBus(_settings())
    started = time.monotonic()
    while time.monotonic() - started < args.seconds:
        second = time.monotonic()
        await bus.publish_many(events)
        await asyncio.sleep(max(0.0, 1 - (time.monotonic() - second)))
    await bus.close()
    await process.wait()
    await _delete_queue(QUEUE)


if __name__ == "__main__":
    asyncio.run(main())
