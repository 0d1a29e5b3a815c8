"""Load: N conversation.ended events through the context-handling service on PostgreSQL.

    python bench/bench_service.py [--events 50000] [--users 4000] [--database-url postgresql://…]
                                  [--redis-url redis://127.0.0.1:6379/0] [--prefetch 1000] [--batch 500]
                                  [--relay-process] [--json-out FILE] [--profile FILE.html]

The events (the demo's simulated back end, scaled up) are published first, straight to the
service's queue, so the measurement is the service draining a backlog: every event deduplicated,
scored, written with its derived events in one transaction per batch, acked after the commit, and
the derived events published by the outbox relay with confirms. Reported: events/s (first delivery
to last commit), processing latency p50/p99 (delivery to commit, per event; under a backlog it
includes waiting for the batch in progress), batch sizes, and how long the relay took to publish
the derived events. The PostgreSQL schema, the queue and the Redis keys are removed afterwards.
Results are also written as JSON (``--json-out``).

CPU is the service process's own (``/proc/self/task``: the event loop thread and the worker
threads separately), per processed event, over the processing window and over the whole drain
(until the outbox is empty): on a shared machine it moves far less than the wall-clock rates.
The last line is one row in the shape of ``bench/run.py``'s table, to put beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aio_pika
import sqlalchemy as sa

from context_handling.app import ContextHandlingService
from context_handling.demo import delete_queues
from context_handling.settings import ServiceSettings
from context_handling.simulation import simulate
from eventbus import BusSettings, EventBus, consumer_queue_name, contract_for
from eventbus_contracts import ConversationEndedV1

BROKER = "amqp://guest:guest@127.0.0.1:5672/%2F"
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


async def declare_service_queue(bus_settings: BusSettings) -> None:
    """Let the SDK declare the service's queue (its arguments are the SDK's business), consuming nothing."""
    bus = EventBus(bus_settings)

    @bus.subscribe(ConversationEndedV1)
    async def unused(event: ConversationEndedV1) -> None:
        """Never called for the benchmark's events: they are published after this bus closed."""

    await bus.start()
    await bus.close()


async def preload(url: str, queue: str, stream: list[Any]) -> float:
    """Fill the service's queue; returns publishes per second."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        gate = asyncio.Semaphore(500)
        contract = contract_for(ConversationEndedV1)

        async def one(item: Any) -> None:
            message = aio_pika.Message(
                contract.encode(item.event),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=item.event_id,
                type=contract.type,
                headers={
                    "cloudEvents_specversion": "1.0",
                    "cloudEvents_id": item.event_id,
                    "cloudEvents_source": "/bench/chat-backend",
                    "cloudEvents_type": contract.type,
                    "cloudEvents_time": item.event.ended_at.isoformat(),
                },
            )
            async with gate:
                await channel.default_exchange.publish(message, routing_key=queue)

        started = time.perf_counter()
        await asyncio.gather(*(one(item) for item in stream))
        return len(stream) / (time.perf_counter() - started)
    finally:
        await connection.close()


async def bind_sink(url: str, name: str) -> None:
    """A bounded queue on ``context.#`` standing in for downstream consumers, so derived events are
    routable (as in production) without piling up: the broker keeps the newest 1000."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange("context", aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(
            name, durable=False, arguments={"x-max-length": 1000, "x-overflow": "drop-head"}
        )
        await queue.bind(exchange, routing_key="context.#")
    finally:
        await connection.close()


def _ticks_per_second() -> int:
    return os.sysconf("SC_CLK_TCK")


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of this process's threads: ``loop`` (the main thread) and ``workers``
    (every other thread: the batch writer's and the relay's database calls, the cache)."""
    main = os.getpid()
    totals = {"loop": 0.0, "workers": 0.0}
    for task in Path(f"/proc/{main}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # a thread that ended meanwhile
            continue
        seconds = (int(fields[11]) + int(fields[12])) / _ticks_per_second()
        totals["loop" if int(task.name) == main else "workers"] += seconds
    return totals


def cpu_since(before: dict[str, float], before_process: float) -> dict[str, float]:
    after = thread_cpu()
    return {
        "process": time.process_time() - before_process,
        **{name: after[name] - before[name] for name in after},
    }


def pending(service: ContextHandlingService) -> int:
    with service.engine.connect() as connection:
        return service.storage.outbox.pending_count(connection)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    service_name = f"bench-context-{uuid.uuid4().hex[:8]}"
    schema = service_name.replace("-", "_")
    admin = sa.create_engine(args.database_url, poolclass=sa.pool.NullPool)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in args.database_url else "?"
    settings = ServiceSettings(
        bus=BusSettings(service_name, urls=(args.url,), prefetch=args.prefetch),
        database_url=f"{args.database_url}{separator}options=-csearch_path%3D{schema}",
        redis_url=args.redis_url or None,
        cache_prefix=f"{service_name}:",
        http=None,
        scheduler=False,
        batch_max=args.batch,
        relay=not args.relay_process,
        decay_shards=1,  # no decay chord, so no workflow engine consuming beside the measured service
    )
    queue = consumer_queue_name(service_name, "chat.conversation.ended.v1")
    stream = simulate(users=args.users, conversations=args.events, days=60, seed=args.seed, duplicate_share=0.0)
    print(f"{len(stream)} events among {args.users} users; publishing them to {queue} …", flush=True)
    sink = f"{service_name}.sink"
    await bind_sink(args.url, sink)
    await declare_service_queue(settings.bus)
    publish_rate = await preload(args.url, queue, stream)
    print(f"published at {publish_rate:.0f}/s; starting the service", flush=True)

    service = ContextHandlingService(settings)
    result: dict[str, Any] = {}
    relay: subprocess.Popen[bytes] | None = None
    if args.relay_process:
        env = {
            **os.environ,
            "EVENTBUS_URL": args.url,
            "DATABASE_URL": settings.database_url,
            "CONTEXT_SERVICE": service_name,
            "CONTEXT_HTTP": "off",
        }
        relay = subprocess.Popen([sys.executable, "-m", "context_handling", "relay"], env=env)
    try:
        await service.prepare()
        load_before = os.getloadavg()
        profiler = None
        if args.profile:
            from pyinstrument import Profiler

            profiler = Profiler(async_mode="disabled")
            profiler.start()
        cpu_threads, cpu_process = thread_cpu(), time.process_time()
        started = time.perf_counter()
        await service.start()
        while sum(service.totals[o] for o in ("applied", "duplicate", "rejected")) < len(stream):
            await asyncio.sleep(0.05)
        processed_at = time.perf_counter()
        cpu_processing = cpu_since(cpu_threads, cpu_process)
        load_during = os.getloadavg()
        while await asyncio.to_thread(pending, service) > 0:  # not on the service's event loop
            await asyncio.sleep(0.2)
        drained_at = time.perf_counter()
        cpu_drained = cpu_since(cpu_threads, cpu_process)
        if profiler is not None:
            profiler.stop()
            args.profile.write_text(profiler.output_html())
            args.profile.with_suffix(".txt").write_text(profiler.output_text(unicode=True, show_all=False))
        latencies = list(service.latencies)
        batches = service.metrics.batch_size.collect()[0].samples
        batch_count = next(s.value for s in batches if s.name.endswith("_count"))
        batch_sum = next(s.value for s in batches if s.name.endswith("_sum"))
        with service.engine.connect() as connection:
            counts = service.storage.counts_by_status(connection)
        seconds = processed_at - started
        result = {
            "events": len(stream),
            "users": args.users,
            "database": "postgresql",
            "cache": service.cache.description,
            "prefetch": args.prefetch,
            "batch_max": args.batch,
            "processing_seconds": round(seconds, 2),
            "events_per_second": round(len(stream) / seconds, 1),
            "events_per_second_through_outbox": round(len(stream) / (drained_at - started), 1),
            "cpu_us_per_event_processing": round(cpu_processing["process"] / len(stream) * 1e6, 1),
            "cpu_us_per_event_processing_loop_thread": round(cpu_processing["loop"] / len(stream) * 1e6, 1),
            "cpu_us_per_event_processing_other_threads": round(cpu_processing["workers"] / len(stream) * 1e6, 1),
            "cpu_us_per_event_until_drained": round(cpu_drained["process"] / len(stream) * 1e6, 1),
            "cpu_share_of_one_core_processing": round(cpu_processing["process"] / seconds, 2),
            "load_average_1min_at_start": round(load_before[0], 2),
            "load_average_1min_at_end_of_processing": round(load_during[0], 2),
            "latency_p50_ms": round(statistics.median(latencies) * 1000, 1),
            "latency_p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
            "mean_batch": round(batch_sum / batch_count, 1),
            "derived_events": service.totals["derived_events"],
            "status_changes": service.totals["status_changes"],
            "outbox_drained_seconds_after_start": round(drained_at - started, 2),
            "derived_published_per_second": round(service.totals["derived_events"] / (drained_at - started), 1),
            "pairs_by_status": {s.value: n for s, n in counts.items()},
            "publish_rate_preload": round(publish_rate, 1),
            "relay": "separate process" if args.relay_process else "in the service's event loop",
            "git_commit": _git_commit(),
        }
    finally:
        if relay is not None:
            relay.send_signal(signal.SIGTERM)
            relay.wait(timeout=30)
        await service.stop(grace=5, drain_outbox=0)
        await delete_queues(args.url, [queue, f"{queue}.dlq", sink])
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
        if args.redis_url:
            import redis

            client = redis.Redis.from_url(args.redis_url)
            keys = list(client.scan_iter(match=f"{service_name}:*", count=1000))
            for start in range(0, len(keys), 1000):
                client.delete(*keys[start : start + 1000])
            client.close()
    return result


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
    except OSError:
        return None
    return out.stdout.strip() or None


def table_row(result: dict[str, Any]) -> str:
    """One Markdown row shaped like bench/run.py's: rate, CPU µs per event, latency."""
    return (
        "| client | events/s (to last commit) | events/s (outbox drained) | CPU µs/event | p50 ms | p99 ms | load |\n"
        "|---|---:|---:|---:|---:|---:|---:|\n"
        f"| context-handling ({result['events']:,} events, PostgreSQL + Redis) "
        f"| {result['events_per_second']:,.0f} | {result['events_per_second_through_outbox']:,.0f} "
        f"| {result['cpu_us_per_event_processing']:.0f} | {result['latency_p50_ms']:.0f} "
        f"| {result['latency_p99_ms']:.0f} | {result['load_average_1min_at_start']:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--url", default=BROKER)
    parser.add_argument("--database-url", default=POSTGRES)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="empty for the in-process cache")
    parser.add_argument("--prefetch", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--relay-process", action="store_true", help="publish the outbox from a second process")
    parser.add_argument("--json-out", type=Path, help="also write the result as JSON here")
    parser.add_argument("--profile", type=Path, help="pyinstrument HTML of the service's event loop thread")
    args = parser.parse_args()
    result = asyncio.run(bench(args))
    print(json.dumps(result, indent=2))
    print(table_row(result))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
