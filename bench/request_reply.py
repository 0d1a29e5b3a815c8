"""Request-reply round trip, p50/p99, at a steady modest rate: eventbus against FastStream's
``broker.request`` and raw aio-pika RPC with direct reply-to, in the same run.

Each peer gets a private vhost, a responder that answers ``{"n": n}`` with ``{"n": n}`` from a
queue of its own, and a requester on another connection. After ``--warmup`` unmeasured requests
it sends ``--count`` requests one at a time (``serial``: the bare round trip), then ``--count``
at ``--rate`` per second (``open``: request i leaves at start + i / rate, whatever the earlier
ones do, so concurrent requests share the connection). A round trip is from the call to its
result: eventbus validates the request and the reply against their contracts, FastStream and
aio-pika send and read JSON. Peers alternate for ``--rounds`` rounds; the medians and the
ratios (peer / eventbus, above 1 means eventbus is faster) are printed. eventbus puts the task
on a quorum queue by default (its confirm waits for the Raft log); ``eventbus-classic`` is the
same on a classic queue, as the peers' queues are. FastStream's
``broker.request`` holds a lock for the whole of one request (one in flight per broker), so in
the open mode its requests queue behind each other: that is FastStream's behaviour, measured.

    .venv/bin/python bench/request_reply.py --count 2000 --rate 100 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eventbus import BusSettings, EventBus, EventContract  # noqa: E402
from tests._vhosts import amqp_url, private_vhost  # noqa: E402

Ask = Callable[[int], Awaitable[int]]


class Pong(BaseModel):
    """The reply: the request's number back."""

    model_config = ConfigDict(extra="forbid")
    n: int


PONG: EventContract[Pong] = EventContract(type="bench.pong.v1", exchange="bench", model=Pong,
                                          schema=Pong.model_json_schema())


async def _drive(ask: Ask, count: int, rate: float, warmup: int) -> dict[str, list[float]]:
    """``warmup`` requests, then ``count`` one at a time (serial), then ``count`` at ``rate``/s
    (open loop); the measured round trips in ms, by mode."""
    for n in range(warmup):
        assert await ask(n) == n
    serial: list[float] = []
    for n in range(count):
        started = time.perf_counter()
        assert await ask(n) == n
        serial.append((time.perf_counter() - started) * 1000)
    latencies: list[float] = []

    async def one(n: int, due: float) -> None:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        started = time.perf_counter()
        got = await ask(n)
        latencies.append((time.perf_counter() - started) * 1000)
        assert got == n, (got, n)

    start = time.perf_counter() + 0.05
    await asyncio.gather(*(one(n, start + n / rate) for n in range(count)))
    return {"serial": serial, "open": latencies}


async def eventbus_round(url: str, args: argparse.Namespace, queue_type: str = "quorum") -> dict[str, list[float]]:
    settings = BusSettings(urls=(url,), service="bench-rpc", prefetch=100, queue_type=queue_type)  # type: ignore[arg-type]
    responder, requester = EventBus(settings), EventBus(BusSettings(urls=(url,), service="bench-caller"))

    @responder.task
    async def ping(n: int) -> Pong:
        return Pong(n=n)

    await responder.start()
    try:
        async def ask(n: int) -> int:
            reply = await requester.request(ping.message(n), reply=Pong, timeout=30)
            return int(reply.n)

        return await _drive(ask, args.count, args.rate, args.warmup)
    finally:
        await requester.close()
        await responder.close()


async def faststream_round(url: str, args: argparse.Namespace) -> dict[str, list[float]]:
    from faststream.rabbit import RabbitBroker

    queue = f"bench-faststream-{uuid.uuid4().hex[:8]}"
    responder = RabbitBroker(url, logger=None)

    @responder.subscriber(queue)
    async def ping(body: dict[str, int]) -> dict[str, int]:
        return {"n": body["n"]}

    requester = RabbitBroker(url, logger=None)
    await responder.start()
    await requester.connect()
    try:
        async def ask(n: int) -> int:
            message = await requester.request({"n": n}, queue, timeout=30)
            return int(json.loads(message.body)["n"])

        return await _drive(ask, args.count, args.rate, args.warmup)
    finally:
        await requester.stop()
        await responder.stop()


async def aio_pika_round(url: str, args: argparse.Namespace) -> dict[str, list[float]]:
    import aio_pika

    queue_name = f"bench-aio-pika-{uuid.uuid4().hex[:8]}"
    server = await aio_pika.connect(url)
    server_channel = await server.channel()
    await server_channel.set_qos(prefetch_count=100)
    queue = await server_channel.declare_queue(queue_name, auto_delete=True)

    async def answer(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            body = orjson.dumps({"n": orjson.loads(message.body)["n"]})
            await server_channel.default_exchange.publish(
                aio_pika.Message(body, correlation_id=message.correlation_id, content_type="application/json"),
                routing_key=message.reply_to or "",
            )

    await queue.consume(answer)
    client = await aio_pika.connect(url)
    channel = await client.channel()
    waiting: dict[str, asyncio.Future[bytes]] = {}

    async def on_reply(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        waiter = waiting.pop(message.correlation_id or "", None)
        if waiter is not None and not waiter.done():
            waiter.set_result(message.body)

    reply_queue = await channel.get_queue("amq.rabbitmq.reply-to", ensure=False)
    await reply_queue.consume(on_reply, no_ack=True)
    try:
        async def ask(n: int) -> int:
            correlation_id = uuid.uuid4().hex
            waiter = asyncio.get_running_loop().create_future()
            waiting[correlation_id] = waiter
            await channel.default_exchange.publish(
                aio_pika.Message(orjson.dumps({"n": n}), correlation_id=correlation_id,
                                 reply_to="amq.rabbitmq.reply-to", content_type="application/json"),
                routing_key=queue_name,
            )
            return int(orjson.loads(await asyncio.wait_for(waiter, 30))["n"])

        return await _drive(ask, args.count, args.rate, args.warmup)
    finally:
        await client.close()
        await server.close()


async def eventbus_classic_round(url: str, args: argparse.Namespace) -> dict[str, list[float]]:
    """eventbus with a classic task queue, like the peers' (the default is a replicated quorum queue,
    whose publish confirm waits for the Raft log)."""
    return await eventbus_round(url, args, "classic")


PEERS: dict[str, Callable[[str, argparse.Namespace], Awaitable[dict[str, list[float]]]]] = {
    "eventbus": eventbus_round,
    "eventbus-classic": eventbus_classic_round,
    "faststream": faststream_round,
    "aio-pika": aio_pika_round,
}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


MODES = ("serial", "open")
QUANTILES = {"p50": 0.5, "p99": 0.99}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    results: dict[tuple[str, str, str], list[float]] = {}
    for round_number in range(args.rounds):
        for peer, run in PEERS.items():
            with private_vhost("bench-rpc") as vhost:
                by_mode = await run(amqp_url(vhost), args)
            for mode in MODES:
                line = []
                for name, q in QUANTILES.items():
                    value = _percentile(by_mode[mode], q)
                    results.setdefault((peer, mode, name), []).append(value)
                    line.append(f"{name} {value:8.2f} ms")
                print(f"round {round_number + 1} {peer:<16} {mode:<6} " + "  ".join(line), flush=True)
    table: dict[str, Any] = {"count": args.count, "rate": args.rate, "rounds": args.rounds,
                             "faststream": version("faststream"), "aio-pika": version("aio-pika"), "rows": []}
    print(f"\n{args.count} requests per mode, median of {args.rounds} round(s); ratio = peer / eventbus "
          f"(above 1: eventbus is faster); open = {args.rate:g} requests/s, open loop")
    print(f"{'mode':<7} {'peer':<16} {'p50 ms':>9} {'p99 ms':>9} {'p50 ratio':>10} {'p99 ratio':>10}")
    for mode in MODES:
        base = {name: statistics.median(results["eventbus", mode, name]) for name in QUANTILES}
        for peer in PEERS:
            p50, p99 = (statistics.median(results[peer, mode, name]) for name in QUANTILES)
            table["rows"].append({"mode": mode, "peer": peer, "p50_ms": p50, "p99_ms": p99,
                                  "p50_ratio": p50 / base["p50"], "p99_ratio": p99 / base["p99"]})
            print(f"{mode:<7} {peer:<16} {p50:9.2f} {p99:9.2f} {p50 / base['p50']:10.2f} {p99 / base['p99']:10.2f}")
    if args.json_out:
        args.json_out.write_text(json.dumps(table, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
