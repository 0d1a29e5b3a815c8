"""Publish and consume N conversation.ended events with the SDK and with raw aio-pika, in one run.

    python bench/bench_spine.py [--count 20000] [--rounds 3] [--queue-type quorum|classic]

Same payload, same broker, persistent messages, publisher confirms on, prefetch 200, and
pydantic validation on consume for both. Rounds are interleaved (sdk, raw, sdk, raw, ...) and
the medians are reported with the SDK/raw ratio, because absolute rates on a shared 2-core box
are noisy. Results are also written as JSON (``--json-out``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aio_pika
import orjson

from eventbus import BusSettings, EventBus, EventContext, EventContract
from eventbus_contracts import REGISTRY, ConversationEndedV1


class BenchConversationEnded(ConversationEndedV1):
    """The real model and schema on a private exchange: benchmark traffic must never reach real subscribers."""


_REAL = REGISTRY.get("chat.conversation.ended.v1")
CONTRACT: EventContract[BenchConversationEnded] = EventContract(
    type=_REAL.type, exchange="bench.chat", model=BenchConversationEnded, schema=_REAL.schema, resources=_REAL.resources
)
URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
PREFETCH = 200
WINDOW = 500


TARGET_BYTES = 735  # the event size the performance budget (DESIGN section 8) was measured with


def _event(n: int, participants: int) -> dict[str, object]:
    people = [f"user_{k:05d}" for k in range(participants)]
    return {
        **CONTRACT.schema["examples"][0],
        "conversation_id": f"conv_bench_{n:08d}_{uuid.uuid4().hex[:20]}",
        "participants": people,
        "messages_by_participant": {p: 10 + i for i, p in enumerate(people)},
        "message_count": sum(10 + i for i in range(participants)),
    }


def make_events(count: int) -> list[BenchConversationEnded]:
    """``count`` distinct events of about TARGET_BYTES bytes each on the wire."""
    participants = 2
    while len(orjson.dumps(_event(0, participants))) < TARGET_BYTES:
        participants += 1
    return [CONTRACT.validate_python(_event(n, participants)) for n in range(count)]


async def _fresh_queue(channel: aio_pika.abc.AbstractChannel, name: str, queue_type: str) -> None:
    exchange = await channel.declare_exchange(CONTRACT.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    await channel.queue_delete(name)
    queue = await channel.declare_queue(name, durable=True, arguments={"x-queue-type": queue_type})
    await queue.bind(exchange, routing_key=CONTRACT.type)


async def sdk_round(events: list[BenchConversationEnded], queue_type: str) -> tuple[float, float]:
    service = "bench-sdk"
    queue = f"{service}.{CONTRACT.type}"
    connection = await aio_pika.connect(URL)
    await _fresh_queue(await connection.channel(), queue, queue_type)
    settings = BusSettings(service=service, urls=(URL,), prefetch=PREFETCH, queue_type=queue_type,  # type: ignore[arg-type]
                           publish_window=WINDOW)
    publisher = EventBus(settings)
    started = time.perf_counter()
    await publisher.publish_many(events)
    publish_rate = len(events) / (time.perf_counter() - started)
    await publisher.close()

    consumer = EventBus(settings)
    done = asyncio.Event()
    seen = 0

    @consumer.subscribe(BenchConversationEnded)
    async def handle(event: BenchConversationEnded, ctx: EventContext) -> None:
        nonlocal seen
        seen += 1
        if seen >= len(events):
            done.set()

    started = time.perf_counter()
    await consumer.start()
    await asyncio.wait_for(done.wait(), timeout=600)
    consume_rate = len(events) / (time.perf_counter() - started)
    await consumer.close()
    await connection.close()
    return publish_rate, consume_rate


async def raw_round(events: list[BenchConversationEnded], queue_type: str) -> tuple[float, float]:
    queue_name = f"bench-raw.{CONTRACT.type}"
    bodies = [orjson.dumps(e.model_dump(mode="json", exclude_unset=True)) for e in events]
    connection = await aio_pika.connect(URL)
    channel = await connection.channel(publisher_confirms=True)
    await _fresh_queue(channel, queue_name, queue_type)
    exchange = await channel.get_exchange(CONTRACT.exchange)
    window = asyncio.Semaphore(WINDOW)

    async def publish(body: bytes) -> None:
        async with window:
            await exchange.publish(
                aio_pika.Message(body, content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                 message_id=str(uuid.uuid4()), type=CONTRACT.type),
                routing_key=CONTRACT.type, mandatory=True,
            )

    started = time.perf_counter()
    await asyncio.gather(*(publish(b) for b in bodies))
    publish_rate = len(events) / (time.perf_counter() - started)

    consume_channel = await connection.channel()
    await consume_channel.set_qos(prefetch_count=PREFETCH)
    queue = await consume_channel.get_queue(queue_name)
    done = asyncio.Event()
    seen = 0

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal seen
        BenchConversationEnded.model_validate_json(message.body)
        await message.ack()
        seen += 1
        if seen >= len(events):
            done.set()

    started = time.perf_counter()
    await queue.consume(on_message)
    await asyncio.wait_for(done.wait(), timeout=600)
    consume_rate = len(events) / (time.perf_counter() - started)
    await connection.close()
    return publish_rate, consume_rate


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queue-type", choices=("quorum", "classic"), default="quorum")
    parser.add_argument("--json-out", type=Path, default=Path("bench/results-spine.json"))
    args = parser.parse_args()
    events = make_events(args.count)
    print(f"{args.count} events of {len(CONTRACT.encode(events[0]))} bytes, {args.queue_type} queue, "
          f"prefetch {PREFETCH}, window {WINDOW}, {args.rounds} interleaved rounds")
    runners: dict[str, Callable[[list[BenchConversationEnded], str], Awaitable[tuple[float, float]]]] = {
        "eventbus (async)": sdk_round,
        "raw aio-pika": raw_round,
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in runners}
    for round_no in range(args.rounds):
        for name, runner in runners.items():
            rates = await runner(events, args.queue_type)
            results[name].append(rates)
            print(f"  round {round_no + 1} {name:18} publish {rates[0]:8.0f}/s  consume {rates[1]:8.0f}/s")
    medians = {n: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v)) for n, v in results.items()}
    base = medians["raw aio-pika"]
    print(f"\n{'client':18} {'publish msg/s':>14} {'consume msg/s':>14} {'pub ratio':>10} {'con ratio':>10}")
    for name, (pub, con) in medians.items():
        print(f"{name:18} {pub:14.0f} {con:14.0f} {pub / base[0]:10.2f} {con / base[1]:10.2f}")
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rounds": results,
                                         "medians": medians}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
