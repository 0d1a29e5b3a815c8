"""One command, one table: the SDK side by side with raw aio-pika, raw pika, FastStream and Celery.

    .venv/bin/pip install -e ".[dev,bench]"     # peers come from the bench extra only
    .venv/bin/python bench/run.py [--count 20000] [--rounds 3] [--skip celery,faststream] [--no-latency] [--rate 2000]
                                  [--service-events 20000]

Same 735-byte ``conversation.ended`` payload, same broker, persistent messages, quorum queues,
prefetch 200, confirms on wherever the client has them, pydantic validation on consume. Each
client publishes into its own fresh queue and then consumes it; rounds are interleaved
(client A, B, C, A, B, C, ...) and medians are reported with ratios to raw aio-pika, because
absolute rates on a shared 2-core box are noisy. Blocking confirm-each publishers (raw pika)
publish ``--slow-count`` events only; their rate is still per second. The latency scenario
publishes at a steady ``--rate`` for ``--seconds`` and reports p50/p99 from publish call to
handler. Every queue is on a private exchange (``bench.*``) and is deleted after its round.
The service scenario runs ``bench/bench_service.py`` (the context-handling service draining
``--service-events`` conversations on PostgreSQL and Redis) once, after the rounds. A last table
sets the SDK against the issue's goals: its ratios to FastStream and Celery (publish, consume,
and end to end: publishing N then consuming N), the sync publisher against raw pika, p99 latency.
Results also go to ``bench/results.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aio_pika
import aiormq
import orjson
import pika

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._payload import CONTRACT, PREFETCH, URL, WINDOW, BenchConversationEnded, make_events  # noqa: E402
from eventbus import BusSettings, EventBus, EventContext, SyncEventBus  # noqa: E402
from eventbus._topology import queue_specs  # noqa: E402

Events = list[BenchConversationEnded]
Rates = dict[str, float]


def _bodies(events: Events) -> list[bytes]:
    return [orjson.dumps(e.model_dump(mode="json", exclude_unset=True)) for e in events]


async def _fresh_queue(name: str, exchange: str = CONTRACT.exchange, key: str = CONTRACT.type) -> None:
    """A new quorum queue bound to the private exchange, with the arguments the SDK itself declares."""
    main, dead_letters = queue_specs(name, "quorum", BusSettings(service="bench").delivery_limit)
    connection = await aiormq.connect(URL)
    channel = await connection.channel()
    await channel.exchange_declare(exchange, exchange_type="topic", durable=True)
    for spec_ in (main, dead_letters):
        await channel.queue_delete(spec_.name)
    await channel.queue_declare(name, durable=True, arguments=main.arguments)
    await channel.queue_declare(dead_letters.name, durable=True, arguments=dead_letters.arguments)
    await channel.queue_bind(name, exchange, routing_key=key)
    await connection.close()


async def _delete_queue(name: str) -> None:
    connection = await aiormq.connect(URL)
    channel = await connection.channel()
    await channel.queue_delete(name)
    await channel.queue_delete(f"{name}.dlq")
    await connection.close()


async def _fill(name: str, bodies: list[bytes]) -> None:
    """Put ``bodies`` into queue ``name`` (default exchange) with a confirm window: setup, not measured."""
    connection = await aiormq.connect(URL)
    channel = await connection.channel(publisher_confirms=True)
    window = asyncio.Semaphore(WINDOW)
    props = aiormq.spec.Basic.Properties(content_type="application/json", delivery_mode=2, message_type=CONTRACT.type)

    async def one(body: bytes) -> None:
        async with window:
            await channel.basic_publish(body, routing_key=name, properties=props)

    await asyncio.gather(*(one(b) for b in bodies))
    await connection.close()


# -- clocks: rates by the wall, and the client's own CPU per message (steadier on a shared box) --

CPU_US: dict[str, float] = {}
CLEANUP: set[str] = set()  # queues kept across rounds, deleted at the end of the run


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _rate(count: int, started: tuple[float, float], kind: str | None) -> float:
    """Messages per wall-clock second since ``started``; records this process's CPU µs per message."""
    wall, cpu = time.perf_counter() - started[0], time.process_time() - started[1]
    if kind is not None:
        CPU_US[kind] = cpu / count * 1e6
    return count / wall


# -- clients ---------------------------------------------------------------------------------


def _settings(service: str) -> BusSettings:
    return BusSettings(service=service, urls=(URL,), prefetch=PREFETCH, publish_window=WINDOW)


def counting_consumer(settings: BusSettings, count: int) -> tuple[EventBus, asyncio.Event]:
    """An SDK consumer of the benchmark event and the flag it sets once ``count`` were handled."""
    consumer = EventBus(settings)
    done = asyncio.Event()
    seen = 0

    @consumer.subscribe(BenchConversationEnded)
    async def handle(event: BenchConversationEnded, ctx: EventContext) -> None:
        nonlocal seen
        seen += 1
        if seen >= count:
            done.set()

    return consumer, done


async def eventbus_async(events: Events, args: argparse.Namespace) -> Rates:
    service = "bench-sdk"
    queue = f"{service}.{CONTRACT.type}"
    await _fresh_queue(queue)
    publisher = EventBus(_settings(service))
    started = _clock()
    await publisher.publish_many(events)
    publish = _rate(len(events), started, "publish")
    await publisher.close()

    consumer, done = counting_consumer(_settings(service), len(events))
    started = _clock()
    await consumer.start()
    await asyncio.wait_for(done.wait(), timeout=600)
    consume = _rate(len(events), started, "consume")
    await consumer.close()
    await _delete_queue(queue)
    return {"publish": publish, "consume": consume}


def _sync_publish(events: Events) -> float:
    bus = SyncEventBus(_settings("bench-sdk-sync"))
    started = _clock()
    bus.publish_many(events)
    rate = _rate(len(events), started, "publish")
    bus.close()
    return rate


async def eventbus_sync(events: Events, args: argparse.Namespace) -> Rates:
    queue = f"bench-sdk-sync.{CONTRACT.type}"
    await _fresh_queue(queue)
    sample = events[: args.sync_count]
    publish = await asyncio.to_thread(_sync_publish, sample)
    await _delete_queue(queue)
    return {"publish": publish}


async def raw_aio_pika(events: Events, args: argparse.Namespace) -> Rates:
    queue_name = f"bench-raw.{CONTRACT.type}"
    bodies = _bodies(events)
    await _fresh_queue(queue_name)
    connection = await aio_pika.connect(URL)
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.get_exchange(CONTRACT.exchange)
    window = asyncio.Semaphore(WINDOW)

    async def publish_one(body: bytes) -> None:
        async with window:
            await exchange.publish(
                aio_pika.Message(body, content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                 message_id=str(uuid.uuid4()), type=CONTRACT.type),
                routing_key=CONTRACT.type, mandatory=True,
            )

    started = _clock()
    await asyncio.gather(*(publish_one(b) for b in bodies))
    publish = _rate(len(events), started, "publish")

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

    started = _clock()
    await queue.consume(on_message)
    await asyncio.wait_for(done.wait(), timeout=600)
    consume = _rate(len(events), started, "consume")
    await connection.close()
    await _delete_queue(queue_name)
    return {"publish": publish, "consume": consume}


def _pika_publish(queue: str, bodies: list[bytes]) -> float:
    connection = pika.BlockingConnection(pika.URLParameters(URL))
    channel = connection.channel()
    channel.confirm_delivery()
    props = pika.BasicProperties(content_type="application/json", delivery_mode=2, type=CONTRACT.type)
    started = _clock()
    for body in bodies:
        channel.basic_publish(CONTRACT.exchange, CONTRACT.type, body, props, mandatory=True)
    rate = _rate(len(bodies), started, "publish")
    connection.close()
    return rate


def _pika_consume(queue: str, count: int) -> float:
    connection = pika.BlockingConnection(pika.URLParameters(URL))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=PREFETCH)
    seen = 0

    def on_message(ch: pika.adapters.blocking_connection.BlockingChannel, method: object, _p: object,
                   body: bytes) -> None:
        nonlocal seen
        BenchConversationEnded.model_validate_json(body)
        ch.basic_ack(method.delivery_tag)  # type: ignore[attr-defined]
        seen += 1
        if seen >= count:
            ch.stop_consuming()

    channel.basic_consume(queue, on_message)
    started = _clock()
    channel.start_consuming()
    rate = _rate(count, started, "consume")
    connection.close()
    return rate


async def raw_pika(events: Events, args: argparse.Namespace) -> Rates:
    queue = f"bench-pika.{CONTRACT.type}"
    bodies = _bodies(events)
    await _fresh_queue(queue)
    publish = await asyncio.to_thread(_pika_publish, queue, bodies[: args.sync_count])
    await _fresh_queue(queue)
    await _fill(queue, bodies)
    consume = await asyncio.to_thread(_pika_consume, queue, len(bodies))
    await _delete_queue(queue)
    return {"publish": publish, "consume": consume}


async def faststream(events: Events, args: argparse.Namespace) -> Rates:
    from faststream.rabbit import Channel, RabbitBroker, RabbitExchange, RabbitQueue
    from faststream.rabbit.schemas import ExchangeType

    queue_name = f"bench-faststream.{CONTRACT.type}"
    await _fresh_queue(queue_name)
    exchange = RabbitExchange(CONTRACT.exchange, type=ExchangeType.TOPIC, durable=True)
    arguments = queue_specs(queue_name, "quorum", BusSettings(service="bench").delivery_limit)[0].arguments
    queue = RabbitQueue(queue_name, durable=True, routing_key=CONTRACT.type, arguments=arguments)
    broker = RabbitBroker(URL, default_channel=Channel(prefetch_count=PREFETCH), logger=None)
    done = asyncio.Event()
    seen = 0

    @broker.subscriber(queue, exchange)
    async def handle(event: BenchConversationEnded) -> None:
        nonlocal seen
        seen += 1
        if seen >= len(events):
            done.set()

    publisher = RabbitBroker(URL, logger=None)
    await publisher.connect()
    window = asyncio.Semaphore(WINDOW)

    async def publish_one(event: BenchConversationEnded) -> None:
        async with window:
            await publisher.publish(event, exchange=exchange, routing_key=CONTRACT.type, persist=True, mandatory=True)

    started = _clock()
    await asyncio.gather(*(publish_one(e) for e in events))
    publish = _rate(len(events), started, "publish")
    await publisher.stop()

    started = _clock()
    await broker.start()
    await asyncio.wait_for(done.wait(), timeout=600)
    consume = _rate(len(events), started, "consume")
    await broker.stop()
    await _delete_queue(queue_name)
    return {"publish": publish, "consume": consume}


async def _queue_depth(connection: aiormq.abc.AbstractConnection, name: str) -> int:
    """Ready messages in ``name`` (a passive declare on a throwaway channel: a 404 closes it)."""
    channel = await connection.channel()
    try:
        ok = await channel.queue_declare(name, passive=True)
    except aiormq.exceptions.ChannelNotFoundEntity:
        return 0
    await channel.close()
    return int(ok.message_count or 0)


async def celery(events: Events, args: argparse.Namespace) -> Rates:
    from bench._celery_app import QUEUE, conversation_ended

    # kombu declares its queue once per process, so the queue is purged between rounds, not deleted
    connection = await aiormq.connect(URL)
    channel = await connection.channel()
    with contextlib.suppress(aiormq.exceptions.ChannelNotFoundEntity):
        await channel.queue_purge(QUEUE)
    await connection.close()
    CLEANUP.add(QUEUE)
    payloads = [e.model_dump(mode="json", exclude_unset=True) for e in events]

    def publish_all() -> float:
        started = _clock()
        for payload in payloads:
            conversation_ended.apply_async((payload,))
        return _rate(len(payloads), started, "publish")

    publish = await asyncio.to_thread(publish_all)
    connection = await aiormq.connect(URL)
    if (depth := await _queue_depth(connection, QUEUE)) != len(events):
        await connection.close()
        raise RuntimeError(f"{depth} of {len(events)} Celery tasks reached the queue")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bench._celery_app", "worker", "-P", "prefork", "-c", "2",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", QUEUE, "--loglevel", "WARNING"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        # The clock starts when the worker takes its first message, so its start-up is not counted.
        while await _queue_depth(connection, QUEUE) >= len(events):
            await asyncio.sleep(0.01)
        started = _clock()
        while await _queue_depth(connection, QUEUE) > 0:
            await asyncio.sleep(0.02)
        consume = _rate(len(events), started, None)  # the work is in the worker processes
    finally:
        worker.terminate()
        worker.wait(30)
        await connection.close()
    return {"publish": publish, "consume": consume}


# -- latency at a steady rate -------------------------------------------------------------------
# The publisher runs in its own process (``run.py --steady-publisher CLIENT``) so that it does not
# compete with the consumer for the event loop; each event carries its send time (wall clock, ns)
# in its conversation id, and the consumer's handler takes the difference.


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": ordered[len(ordered) // 2] * 1e3, "p99_ms": ordered[int(len(ordered) * 0.99)] * 1e3}


def _stamped(event: BenchConversationEnded) -> BenchConversationEnded:
    return event.model_copy(update={"conversation_id": f"conv_lat_{time.time_ns()}"})


def _latency(event: BenchConversationEnded) -> float:
    return (time.time_ns() - int(event.conversation_id.rsplit("_", 1)[1])) / 1e9


async def _steady(events: Events, rate: int, send: Callable[[BenchConversationEnded], Awaitable[object]]) -> None:
    """Start one publish every 1/rate s without waiting for confirms in between."""
    tasks = []
    started = time.perf_counter()
    lag = 0.0
    for n, event in enumerate(events):
        delay = started + n / rate - time.perf_counter()
        if delay > 0.001:
            await asyncio.sleep(delay)
        lag = max(lag, -delay)
        tasks.append(asyncio.ensure_future(send(_stamped(event))))
    await asyncio.gather(*tasks)
    if lag > 0.05:
        print(f"    (steady publisher fell up to {lag * 1e3:.0f} ms behind its schedule)", file=sys.stderr)


async def steady_publisher(client: str, count: int, rate: int) -> None:
    events = make_events(count)
    if client == "eventbus":
        bus = EventBus(_settings("bench-sdk-lat"))
        await _steady(events, rate, bus.publish)
        await bus.close()
        return
    connection = await aio_pika.connect(URL)
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.get_exchange(CONTRACT.exchange)

    async def send(event: BenchConversationEnded) -> None:
        body = orjson.dumps(event.model_dump(mode="json", exclude_unset=True))
        await exchange.publish(
            aio_pika.Message(body, content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                             message_id=str(uuid.uuid4()), type=CONTRACT.type),
            routing_key=CONTRACT.type, mandatory=True,
        )

    await _steady(events, rate, send)
    await connection.close()


async def _run_steady(client: str, count: int, rate: int, done: asyncio.Event) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__)), "--steady-publisher", client, "--count", str(count), "--rate", str(rate))
    if await process.wait() != 0:
        raise RuntimeError(f"steady publisher for {client} failed")
    await asyncio.wait_for(done.wait(), timeout=120)


async def latency_eventbus(events: Events, args: argparse.Namespace) -> Rates:
    service = "bench-sdk-lat"
    queue = f"{service}.{CONTRACT.type}"
    await _fresh_queue(queue)
    latencies: list[float] = []
    done = asyncio.Event()
    consumer = EventBus(_settings(service))

    @consumer.subscribe(BenchConversationEnded)
    async def handle(event: BenchConversationEnded, ctx: EventContext) -> None:
        latencies.append(_latency(event))
        if len(latencies) >= len(events):
            done.set()

    await consumer.start()
    await _run_steady("eventbus", len(events), args.rate, done)
    await consumer.close()
    await _delete_queue(queue)
    return _percentiles(latencies)


async def latency_aio_pika(events: Events, args: argparse.Namespace) -> Rates:
    queue_name = f"bench-raw-lat.{CONTRACT.type}"
    await _fresh_queue(queue_name)
    latencies: list[float] = []
    done = asyncio.Event()
    connection = await aio_pika.connect(URL)
    consume_channel = await connection.channel()
    await consume_channel.set_qos(prefetch_count=PREFETCH)
    queue = await consume_channel.get_queue(queue_name)

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        event = BenchConversationEnded.model_validate_json(message.body)
        await message.ack()
        latencies.append(_latency(event))
        if len(latencies) >= len(events):
            done.set()

    await queue.consume(on_message)
    await _run_steady("aio-pika", len(events), args.rate, done)
    await connection.close()
    await _delete_queue(queue_name)
    return _percentiles(latencies)


# -- the run ------------------------------------------------------------------------------------

THROUGHPUT: dict[str, Callable[[Events, argparse.Namespace], Awaitable[Rates]]] = {
    "eventbus-async": eventbus_async,
    "eventbus-sync": eventbus_sync,
    "aio-pika": raw_aio_pika,
    "pika": raw_pika,
    "faststream": faststream,
    "celery": celery,
}
LATENCY: dict[str, Callable[[Events, argparse.Namespace], Awaitable[Rates]]] = {
    "eventbus-async": latency_eventbus,
    "aio-pika": latency_aio_pika,
}
BASE = "aio-pika"


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def _service_scenario(events: int) -> dict[str, object] | None:
    """The context-handling service on PostgreSQL + Redis (``bench_service.py``), its table row printed."""
    out = ROOT / "bench" / "results-service.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bench" / "bench_service.py"), "--events", str(events), "--json-out", str(out),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    if process.returncode != 0:
        print(f"\nservice scenario failed (exit {process.returncode}):\n{output.decode()[-2000:]}")
        return None
    print("\n" + "\n".join(output.decode().rstrip().splitlines()[-3:]))
    return json.loads(out.read_text())


def _goals(table: dict[str, Rates], lat: dict[str, Rates]) -> dict[str, float]:
    """The SDK's ratios that the performance issue sets goals for (those this run has data for)."""
    sdk = table.get("eventbus-async", {})
    goals: dict[str, float] = {}

    def end_to_end(rates: Rates) -> float | None:  # publish N, then consume N
        p, c = rates.get("publish"), rates.get("consume")
        return 1 / (1 / p + 1 / c) if p and c else None

    for peer, marks in (("aio-pika", (1.5, 1.6)), ("faststream", (2.5, 2.5)), ("celery", (4.0, 4.0))):
        other = table.get(peer)
        if not other or not sdk:
            continue
        for kind, mark in zip(("publish", "consume"), marks, strict=True):
            if sdk.get(kind) and other.get(kind):
                goals[f"eventbus-async {kind} / {peer} (goal >= {mark:g}x)"] = sdk[kind] / other[kind]
        ours, theirs = end_to_end(sdk), end_to_end(other)
        if ours and theirs and peer != "aio-pika":
            goals[f"eventbus-async end to end / {peer} (goal >= {marks[0]:g}x)"] = ours / theirs
    sync, pika_ = table.get("eventbus-sync", {}).get("publish"), table.get("pika", {}).get("publish")
    if sync and pika_:
        goals["eventbus-sync publish / pika confirm-each publish (goal: well above 1x)"] = sync / pika_
    if "eventbus-async" in lat and "aio-pika" in lat:
        goals["aio-pika p99 / eventbus-async p99 at the steady rate (goal > 1x)"] = (
            lat["aio-pika"]["p99_ms"] / lat["eventbus-async"]["p99_ms"])
    return goals


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--sync-count", type=int, default=3_000, help="events for blocking publishers")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=int, default=2_000, help="msg/s of the latency scenario")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the latency scenario")
    parser.add_argument("--skip", default="", help=f"comma-separated clients to leave out ({', '.join(THROUGHPUT)})")
    parser.add_argument("--no-latency", action="store_true", help="leave out the steady-rate latency scenario")
    parser.add_argument("--service-events", type=int, default=20_000,
                        help="conversations for the context-handling scenario (0 leaves it out)")
    parser.add_argument("--json-out", type=Path, default=ROOT / "bench" / "results.json")
    parser.add_argument("--steady-publisher", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steady_publisher:
        await steady_publisher(args.steady_publisher, args.count, args.rate)
        return
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    clients = {n: f for n, f in THROUGHPUT.items() if n not in skip}
    events = make_events(max(args.count, int(args.rate * args.seconds)))
    print(f"{args.count} events of {len(CONTRACT.encode(events[0]))} bytes, quorum queues, prefetch {PREFETCH}, "
          f"window {WINDOW}, {args.rounds} interleaved rounds, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    rounds: dict[str, list[Rates]] = {n: [] for n in clients}
    errors: dict[str, str] = {}
    for round_no in range(args.rounds):
        for name, run in clients.items():
            if name in errors:
                continue
            CPU_US.clear()
            try:
                rates = await run(events[: args.count], args)
                rates |= {f"{kind}_cpu_us": value for kind, value in CPU_US.items()}
            except Exception as exc:  # a peer that cannot run here is reported, not fatal
                errors[name] = f"{type(exc).__name__}: {exc}"
                print(f"  {name}: skipped ({errors[name]})")
                continue
            rounds[name].append(rates)
            print(f"  round {round_no + 1} {name:16} " + "  ".join(f"{k} {v:8.0f}/s" for k, v in rates.items()))
    for queue in CLEANUP:
        await _delete_queue(queue)
    lat_rounds: dict[str, list[Rates]] = {n: [] for n in LATENCY}
    steady = events[: int(args.rate * args.seconds)]
    for round_no in range(0 if args.no_latency else args.rounds):
        for name, run in LATENCY.items():
            result = await run(steady, args)
            lat_rounds[name].append(result)
            print(f"  latency round {round_no + 1} {name:16} "
                  f"p50 {result['p50_ms']:.1f} ms  p99 {result['p99_ms']:.1f} ms")

    def medians(per_round: dict[str, list[Rates]]) -> dict[str, Rates]:
        return {n: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for n, rs in per_round.items() if rs}

    table = medians(rounds)
    lat = medians(lat_rounds)
    base = table.get(BASE, {})
    print("\n| client | publish msg/s | x aio-pika | publish CPU µs/msg | consume msg/s | x aio-pika "
          "| consume CPU µs/msg |\n|---|---:|---:|---:|---:|---:|---:|")
    for name, rates in table.items():
        cells = []
        for kind in ("publish", "consume"):
            value, cpu = rates.get(kind), rates.get(f"{kind}_cpu_us")
            ratio = value / base[kind] if value and base.get(kind) else None
            cells += [f"{value:,.0f}" if value else "-", f"{ratio:.2f}" if ratio else "-", f"{cpu:.0f}" if cpu else "-"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    for name, error in errors.items():
        print(f"| {name} | not run: {error} | | | | | |")
    print(f"\nlatency at a steady {args.rate} msg/s for {args.seconds:g} s (publish call → handler), medians:")
    print("| client | p50 ms | p99 ms |\n|---|---:|---:|")
    for name, result in lat.items():
        print(f"| {name} | {result['p50_ms']:.1f} | {result['p99_ms']:.1f} |")
    print(f"\npeak RSS of this process (all clients in it): {_rss_mb():.0f} MB")
    service = await _service_scenario(args.service_events) if args.service_events else None
    goals = _goals(table, lat)
    if goals:
        print("\n| goal | measured |\n|---|---:|")
        for name, value in goals.items():
            print(f"| {name} | {value:.2f}x |")
    args.json_out.write_text(json.dumps({
        "args": {k: str(v) for k, v in vars(args).items()}, "rounds": rounds, "medians": table,
        "latency_rounds": lat_rounds, "latency_medians": lat, "errors": errors, "service": service, "goals": goals,
        "load": os.getloadavg(), "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
