"""The outbox relay alone: how many rows a second it moves from PostgreSQL to the broker.

    .venv/bin/python bench/bench_relay.py [--rows 20000] [--rounds 3] [--database-url URL] [--url AMQP_URL]
    PYTHONPATH=OTHER_CHECKOUT/python_sdk .venv/bin/python bench/bench_relay.py     # another SDK, same command

Each round fills a fresh outbox with ``--rows`` rows and times one ``OutboxRelay`` (batch 500, the
defaults) from start to an empty backlog, for three shapes of backlog:

    unkeyed      rows without an ordering key (the claim of before per-key order)
    many-keys    rows spread over rows/4 keys: a batch can take 500 heads
    few-keys     rows spread over 200 keys: a batch takes at most 200, and the claim skips the rest

An SDK without ordering keys writes every shape unkeyed, so its three figures measure the same thing.
Events go to a private exchange (``bench.outbox``) and a bounded queue, both deleted at the end; the
outbox lives in a schema of its own, dropped at the end. Prints rows/s, median of the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import time
import uuid
from datetime import UTC, datetime

import pika
import sqlalchemy as sa
from pydantic import BaseModel

from eventbus import BusSettings, EventBus, EventContract, Outbox, OutboxEntry, OutboxRelay, create_sql_engine

EXCHANGE = "bench.outbox"
SHAPES = {"unkeyed": None, "many-keys": 0, "few-keys": 200}  # keys (0: rows / 4)
KEYED = "partition_key" in {f.name for f in dataclasses.fields(OutboxEntry)}


class Changed(BaseModel):
    key: str
    value: int


CONTRACT = EventContract(
    type="bench.changed.v1",
    exchange=EXCHANGE,
    model=Changed,
    schema={
        "type": "object",
        "required": ["key", "value"],
        "properties": {"key": {"type": "string"}, "value": {"type": "integer"}},
    },
)


def fill(engine: sa.Engine, outbox: Outbox, rows: int, keys: int | None) -> None:
    for start in range(0, rows, 2000):
        entries = []
        for n in range(start, min(rows, start + 2000)):
            key = f"k{n % keys}" if keys else None
            extra = {"partition_key": key} if KEYED and key else {}
            entries.append(OutboxEntry(Changed(key=key or "-", value=n), event_id=f"e{n}", **extra))
        with engine.begin() as connection:
            outbox.add_many(connection, entries)


async def drain(engine: sa.Engine, outbox: Outbox, url: str) -> float:
    async with EventBus(BusSettings(service="bench-relay", urls=(url,))) as bus:
        relay = OutboxRelay(engine, outbox, bus)
        started = time.perf_counter()
        running = asyncio.ensure_future(relay.run())
        while True:
            with engine.connect() as connection:
                if outbox.pending_count(connection) == 0:
                    break
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - started
        relay.stop()
        await running
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/%2F")
    args = parser.parse_args()

    broker = pika.BlockingConnection(pika.URLParameters(args.url))
    channel = broker.channel()
    channel.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)
    sink = f"bench.outbox.sink.{uuid.uuid4().hex[:8]}"
    channel.queue_declare(sink, arguments={"x-max-length": 1000})
    channel.queue_bind(sink, EXCHANGE, routing_key="#")
    schema = f"bench_relay_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(args.database_url, poolclass=sa.pool.NullPool)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = create_sql_engine(f"{args.database_url}?options=-csearch_path%3D{schema}")
    results: dict[str, list[float]] = {shape: [] for shape in SHAPES}
    try:
        for _ in range(args.rounds):
            for shape, keys in SHAPES.items():
                outbox = Outbox([CONTRACT], table_name=f"outbox_{shape.replace('-', '_')}")
                outbox.metadata.drop_all(engine)
                outbox.create_schema(engine)
                fill(engine, outbox, args.rows, keys if keys != 0 else args.rows // 4)
                with engine.begin() as connection:
                    connection.execute(sa.text(f"ANALYZE {outbox.table.name}"))
                elapsed = asyncio.run(drain(engine, outbox, args.url))
                results[shape].append(args.rows / elapsed)
                outbox.metadata.drop_all(engine)
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
        channel.queue_delete(sink)
        channel.exchange_delete(EXCHANGE)
        broker.close()
    print(f"outbox relay, {args.rows} rows a round, median of {args.rounds} ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC);"
          f" ordering keys {'written' if KEYED else 'not supported by this SDK'}")
    for shape, rates in results.items():
        each = ", ".join(f"{r:,.0f}" for r in rates)
        print(f"  {shape:10s} {statistics.median(rates):9,.0f} rows/s   (rounds: {each})")


if __name__ == "__main__":
    main()
