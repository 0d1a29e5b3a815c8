"""How close to the requested time do delayed events arrive? (docs/reliability.md quotes the result)

    python bench/delay_accuracy.py [--delays 1,2,5,10,30,60,120] [--samples 5]

Publishes ``samples`` events for every delay at once, longest first (so a long delay would
block a short one if the queues had head-of-line blocking), on an exchange of its own with a
contract made up for the run, and reports the arrival error per delay: arrival - (publish +
delay), in ms. Takes as long as the longest delay. Results also go to ``--json-out``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from pathlib import Path

import pika
from pydantic import BaseModel

from eventbus import BusSettings, EventBus, EventContract
from eventbus._delay import landing_queue

URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


class Tick(BaseModel):
    label: str


async def measure(url: str, delays: list[float], samples: int) -> dict[float, list[float]]:
    run = uuid.uuid4().hex[:8]
    contract = EventContract(type="bench.delay.v1", exchange=f"bench-delay-{run}", model=Tick,
                             schema={"type": "object", "properties": {"label": {"type": "string"}}})
    bus = EventBus(BusSettings(service=f"bench-delay-{run}", urls=(url,)))
    due: dict[str, tuple[float, float]] = {}
    errors: dict[float, list[float]] = {d: [] for d in delays}
    done = asyncio.Event()

    @bus.subscribe(Tick)
    async def arrived(event: Tick) -> None:
        delay, deadline = due[event.label]
        errors[delay].append((time.monotonic() - deadline) * 1000)
        if sum(map(len, errors.values())) == len(due):
            done.set()

    await bus.start()
    try:
        for delay in sorted(delays, reverse=True):
            for n in range(samples):
                label = f"{delay}-{n}"
                due[label] = (delay, time.monotonic() + delay)
                await bus.publish(Tick(label=label), delay=delay)
        await asyncio.wait_for(done.wait(), max(delays) + 60)
    finally:
        await bus.close()
        connection = pika.BlockingConnection(pika.URLParameters(url))
        channel = connection.channel()
        for queue in (bus.subscriptions[0].queue, bus.subscriptions[0].queue + ".dlq",
                      landing_queue(contract.exchange, contract.routing_key).name):
            channel.queue_delete(queue)
        channel.exchange_delete(contract.exchange)
        connection.close()
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=URL)
    parser.add_argument("--delays", default="1,2,5,10,30,60,120")
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    delays = [float(d) for d in args.delays.split(",")]
    errors = asyncio.run(measure(args.url, delays, args.samples))
    print(f"{'delay':>8} {'n':>3} {'min ms':>8} {'median ms':>10} {'max ms':>8}")
    summary = {}
    for delay in delays:
        values = errors[delay]
        summary[str(delay)] = {"min": min(values), "median": statistics.median(values), "max": max(values)}
        print(f"{delay:>7g}s {len(values):>3} {min(values):>8.1f} {statistics.median(values):>10.1f} "
              f"{max(values):>8.1f}")
    if args.json_out:
        args.json_out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
