"""Throughput on a 3-node RabbitMQ cluster against a single node, in the same run.

Both are started from the installed RabbitMQ with the same light settings (``tests/cluster/cluster.py``:
one scheduler per node, no plugins), beside the shared broker; each round runs in a fresh vhost.
A round starts a consumer, publishes ``--count`` events with ``publish_many`` (confirmed) and waits
until every one is consumed: publish msg/s is count / publish time, consume msg/s is count / time
from the first publish to the last delivery handled. Rounds alternate single node and cluster;
medians and the cluster / single-node ratios are printed (and written as JSON with ``--json-out``).

    .venv/bin/python bench/cluster.py --count 20000 --rounds 3

The node-kill figures (published / confirmed / consumed / lost around the kill, time to recover)
come from the cluster test suite: ``pytest -m cluster`` prints them at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._payload import PREFETCH, WINDOW, BenchConversationEnded, make_events  # noqa: E402
from bench.run import counting_consumer  # noqa: E402
from eventbus import BusSettings, EventBus  # noqa: E402
from tests.cluster.cluster import Cluster  # noqa: E402


async def one_round(nodes: Cluster, events: list[BenchConversationEnded]) -> dict[str, float]:
    vhost = f"bench-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(nodes.add_vhost, vhost)
    settings = BusSettings(service="bench-cluster", urls=tuple(nodes.urls_for(vhost)), prefetch=PREFETCH,
                           publish_window=WINDOW)
    consumer, done = counting_consumer(settings, len(events))
    publisher = EventBus(settings)
    try:
        await consumer.start()
        started = time.perf_counter()
        await publisher.publish_many(events)
        published = time.perf_counter()
        await asyncio.wait_for(done.wait(), timeout=600)
        consumed = time.perf_counter()
    finally:
        await publisher.close()
        await consumer.close()
        await asyncio.to_thread(nodes.delete_vhost, vhost)
    return {"publish": len(events) / (published - started), "consume": len(events) / (consumed - started)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="leave the nodes running afterwards")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    targets = {"single node": Cluster(1, prefix="ebs", base_port=5720), "3-node cluster": Cluster(3)}
    for nodes in targets.values():
        await asyncio.to_thread(nodes.start)
    events = make_events(args.count)
    rates: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
    try:
        for _ in range(args.rounds):
            for name, nodes in targets.items():
                rates[name].append(await one_round(nodes, events))
    finally:
        if not args.keep:
            for nodes in targets.values():
                if nodes.started_here:
                    await asyncio.to_thread(nodes.stop)
    medians = {name: {kind: statistics.median(r[kind] for r in rounds) for kind in ("publish", "consume")}
               for name, rounds in rates.items()}
    print(f"{args.count} events of ~735 bytes, {args.rounds} rounds, medians (msg/s)")
    print(f"{'':<16}{'publish':>10}{'consume':>10}")
    for name, median in medians.items():
        print(f"{name:<16}{median['publish']:>10.0f}{median['consume']:>10.0f}")
    ratio = {kind: medians["3-node cluster"][kind] / medians["single node"][kind] for kind in ("publish", "consume")}
    print(f"{'cluster / single':<16}{ratio['publish']:>10.2f}{ratio['consume']:>10.2f}")
    if args.json_out:
        args.json_out.write_text(json.dumps({"count": args.count, "rounds": rates, "medians": medians,
                                             "ratio": ratio}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
