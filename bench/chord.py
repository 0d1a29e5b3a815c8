"""A chord of ``--count`` members, then one callback: eventbus against Celery's chord (Redis result
backend), in the same run, rounds interleaved (eventbus, Celery, eventbus, Celery, ...).

Each round of each peer gets a private vhost (made and deleted through the management API) and the
same work (``bench/_chord_work.py``): a member validates ``{"n": n}`` with a pydantic model and returns
``{"n": n, "square": n * n}``; the callback validates every result, checks count and order, and pushes
the wall-clock time it ran to a Redis list. Both peers run two worker processes with a prefetch of
``--prefetch`` per process (Celery: ``-P prefork -c 2 --prefetch-multiplier P``, one consumer taking
2·P for its two children; eventbus: two ``eventbus worker`` processes with prefetch P each), started
before the clock and warmed up with a chord of ``--warmup`` members. Measured per round:

- ``publish``: the publishing call, from its start until it returns (eventbus: ``await
  bus.start(canvas)``, every step confirmed; Celery: ``chord(header)(callback)``, its default
  publishing without confirms);
- ``callback``: from the start of publishing until the callback ran (its own timestamp);
- ``cpu``: user + system CPU of the worker processes and all their children (``/proc``) between the
  start of publishing and the callback; the publisher's own CPU is printed beside it, and so is the
  CPU of the Redis server (``INFO cpu``) and of the process listening on 5672 (RabbitMQ, ``/proc``)
  over the same span: shared services, so other sessions' work is in those two figures too.

Printed: every round, then the medians and the ratio Celery / eventbus (above 1: eventbus is faster).
Redis keys live in database ``--redis-db`` under a per-round prefix and are removed after the round.

    .venv/bin/python bench/chord.py --count 10000 --rounds 3 [--json-out bench/chord.json]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import importlib
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests._vhosts import amqp_url, private_vhost  # noqa: E402

API = "http://127.0.0.1:15672/api"
_AUTH = "Basic " + base64.b64encode(b"guest:guest").decode()
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Measured:
    """One chord of one peer."""

    publish_s: float
    callback_s: float
    worker_cpu_s: float
    publisher_cpu_s: float
    redis_cpu_s: float
    rabbitmq_cpu_s: float
    ok: bool
    results: int


@dataclass
class Round:
    """What a peer's round needs: where to talk, and the knobs."""

    vhost: str
    url: str
    redis_url: str
    key_prefix: str
    args: argparse.Namespace
    logs: list[Path] = field(default_factory=list)

    @property
    def done_key(self) -> str:
        return f"{self.key_prefix}done"


# --- processes and CPU ---------------------------------------------------------------------------

def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, utime + stime in ticks) of ``pid`` from /proc, or None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()  # after "pid (comm) "
    return int(fields[1]), int(fields[11]) + int(fields[12])


def tree_cpu(roots: list[int]) -> float:
    """CPU seconds (user + system) of ``roots`` and all their living descendants."""
    stats: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            stats[int(entry.name)] = stat
    wanted, frontier = set(roots), list(roots)
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _) in stats.items():
            if ppid == parent and pid not in wanted:
                wanted.add(pid)
                frontier.append(pid)
    return sum(stats[pid][1] for pid in wanted if pid in stats) / _TICK


def listener_pid(port: int) -> int | None:
    """The process listening on TCP ``port`` (the shared RabbitMQ), from /proc; None if not found."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if any(os.readlink(fd) in inodes for fd in (entry / "fd").iterdir()):
                    return int(entry.name)
    return None


async def redis_cpu(client: aioredis.Redis) -> float:
    """The Redis server's CPU seconds so far (INFO cpu: user + system)."""
    info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def workers(
    commands: list[list[str]], env: dict[str, str], logs: list[Path]
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start one process per command (own process group, output to a log file); stop them at the end."""
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for command in commands:
            log = Path(tempfile.mkstemp(prefix="bench-chord-", suffix=".log")[1])
            logs.append(log)
            with log.open("wb") as out:
                processes.append(subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=out,
                                                  stderr=subprocess.STDOUT, start_new_session=True))
        yield processes
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def _get(path: str) -> Any:
    request = urllib.request.Request(API + path)
    request.add_header("Authorization", _AUTH)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


async def wait_consumers(vhost: str, queue: str, count: int, processes: list[subprocess.Popen[bytes]],
                         logs: list[Path], timeout: float = 120.0) -> None:
    """Until ``queue`` in ``vhost`` has ``count`` consumers (the workers are up), or fail with their logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"a worker exited with {process.returncode}:\n{_tails(logs)}")
        with contextlib.suppress(OSError, ValueError):
            if int(_get(f"/queues/{quote(vhost, safe='')}/{quote(queue, safe='')}").get("consumers", 0)) >= count:
                return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{queue} did not get {count} consumers in {timeout:.0f} s:\n{_tails(logs)}")


def _tails(logs: list[Path]) -> str:
    return "\n".join(f"--- {log}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-30:]) for log in logs)


async def wait_done(client: aioredis.Redis, key: str, timeout: float) -> dict[str, Any]:
    """The callback's signal (see ``_chord_work.signal_done``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # short waits: a long BLPOP would outlast the client's socket timeout
        got = await client.blpop([key], timeout=1)
        if got is not None:
            return dict(json.loads(got[1]))
    raise RuntimeError(f"no callback within {timeout:.0f} s")


async def measure(run: Round, roots: list[int], publish: Callable[[int, str], Awaitable[None]]) -> Measured:
    """Warm up with a small chord, then time one chord of ``--count`` members (see the module doc)."""
    client = aioredis.Redis.from_url(run.redis_url)
    try:
        if run.args.warmup:
            await publish(run.args.warmup, run.done_key + ":warmup")
            warm = await wait_done(client, run.done_key + ":warmup", run.args.timeout)
            if not warm["ok"]:
                raise RuntimeError(f"the warm-up chord's callback saw wrong results: {warm}")
        broker = listener_pid(5672)
        services = [broker] if broker is not None else []
        cpu_before, own_before, broker_before = tree_cpu(roots), own_cpu(), tree_cpu(services)
        redis_before = await redis_cpu(client)
        started = time.time()
        await publish(run.args.count, run.done_key)
        published = time.time()
        own_after = own_cpu()
        done = await wait_done(client, run.done_key, run.args.timeout)
        cpu_after, broker_after = tree_cpu(roots), tree_cpu(services)
        redis_after = await redis_cpu(client)
    finally:
        await client.aclose()
    return Measured(publish_s=published - started, callback_s=float(done["t"]) - started,
                    worker_cpu_s=cpu_after - cpu_before, publisher_cpu_s=own_after - own_before,
                    redis_cpu_s=redis_after - redis_before,
                    rabbitmq_cpu_s=broker_after - broker_before if broker is not None else float("nan"),
                    ok=bool(done["ok"]), results=int(done["count"]))


async def cleanup_redis(redis_url: str, prefix: str) -> int:
    client = aioredis.Redis.from_url(redis_url)
    removed = 0
    try:
        async for key in client.scan_iter(match=prefix + "*", count=1000):
            removed += int(await client.delete(key))
    finally:
        await client.aclose()
    return removed


# --- the peers -----------------------------------------------------------------------------------

def _fresh(name: str) -> Any:
    """Import ``name`` anew: its app reads this round's vhost and Redis prefix from the environment."""
    sys.modules.pop(name, None)
    return importlib.import_module(name)


async def celery_round(run: Round) -> Measured:
    env = {"BENCH_CHORD_BROKER": run.url, "BENCH_CHORD_BACKEND": run.redis_url,
           "BENCH_CHORD_KEYPREFIX": run.key_prefix, "BENCH_CHORD_PREFETCH": str(run.args.prefetch)}
    os.environ.update(env)  # the publisher imports the same app module below
    from celery import chord

    celery_app = _fresh("bench._celery_chord_app")

    command = [sys.executable, "-m", "celery", "-A", "bench._celery_chord_app", "worker", "-P", "prefork",
               "-c", "2", "--prefetch-multiplier", str(run.args.prefetch), "--without-gossip",
               "--without-mingle", "--without-heartbeat", "-Q", celery_app.QUEUE, "--loglevel", "WARNING"]

    async def publish(count: int, done_key: str) -> None:
        def send() -> None:
            header = [celery_app.square.s(n) for n in range(count)]
            chord(header)(celery_app.collect.s(count, done_key))

        await asyncio.to_thread(send)

    try:
        with workers([command], env, run.logs) as processes:
            # the publisher declares the queue on its first publish, the worker when it starts
            await wait_consumers(run.vhost, celery_app.QUEUE, 1, processes, run.logs)
            return await measure(run, [p.pid for p in processes], publish)
    finally:
        celery_app.app.close()
        with contextlib.suppress(Exception):
            celery_app.app.pool.force_close_all()


async def eventbus_round(run: Round) -> Measured:
    env = {"BENCH_CHORD_BROKER": run.url, "BENCH_CHORD_BACKEND": run.redis_url,
           "BENCH_CHORD_KEYPREFIX": run.key_prefix, "BENCH_CHORD_PREFETCH": str(run.args.prefetch)}
    os.environ.update(env)  # the publisher imports the same app module below
    from eventbus import consumer_queue_name
    from eventbus.workflows import ENGINE_QUEUE, chord

    app = _fresh("bench._eventbus_chord_app")

    command = [sys.executable, "-m", "eventbus_cli", "worker", "bench._eventbus_chord_app:bus",
               "--log-level", "warning"]
    commands = [command, command]
    if run.args.profile:  # a cProfile of each worker process (written when it exits on SIGTERM)
        run.args.profile.mkdir(parents=True, exist_ok=True)
        commands = [[sys.executable, "-m", "cProfile", "-o", str(run.args.profile / f"eventbus-worker-{i}.prof"),
                     *command[1:]] for i in range(2)]

    async def publish(count: int, done_key: str) -> None:
        await app.bus.start(chord([app.square.si(n=n) for n in range(count)],
                                  app.collect.s(count=count, done_key=done_key)))

    try:
        with workers(commands, env, run.logs) as processes:
            for queue in (consumer_queue_name("bench-chord", app.square.type), ENGINE_QUEUE):
                await wait_consumers(run.vhost, queue, 2, processes, run.logs)
            return await measure(run, [p.pid for p in processes], publish)
    finally:
        await app.bus.close()


PEERS: dict[str, Callable[[Round], Awaitable[Measured]]] = {
    "eventbus": eventbus_round,
    "celery": celery_round,
}

COLUMNS = (("publish_s", "publish s"), ("callback_s", "to callback s"), ("worker_cpu_s", "worker CPU s"),
           ("publisher_cpu_s", "publisher CPU s"), ("redis_cpu_s", "Redis CPU s*"),
           ("rabbitmq_cpu_s", "RabbitMQ CPU s*"))


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="members of the measured chord")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=100, help="members of the unmeasured warm-up chord (0: none)")
    parser.add_argument("--prefetch", type=int, default=100, help="unacked deliveries per worker process")
    parser.add_argument("--redis-db", type=int, default=13, help="the private Redis database of the run")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for a callback")
    parser.add_argument("--skip", default="", help="comma-separated peers to leave out (eventbus, celery)")
    parser.add_argument("--json-out", type=Path, help="write the rounds and medians as JSON")
    parser.add_argument("--profile", type=Path, help="a directory for a cProfile of each eventbus worker "
                        "(diagnosis only: profiling slows them down)")
    args = parser.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    peers = {name: run for name, run in PEERS.items() if name not in skip}
    if not peers:
        parser.error("every peer is skipped")
    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    print(f"chord of {args.count} members + 1 callback, {args.rounds} round(s), 2 worker processes per peer, "
          f"prefetch {args.prefetch} per process; load average before: {_load()}", flush=True)
    rounds: dict[str, list[Measured]] = {name: [] for name in peers}
    loads: list[str] = []
    for number in range(1, args.rounds + 1):
        for name, run_peer in peers.items():
            prefix = f"bench-chord-{uuid.uuid4().hex[:8]}:"
            with private_vhost("bench-chord") as vhost:
                run = Round(vhost=vhost, url=amqp_url(vhost), redis_url=redis_url, key_prefix=prefix, args=args)
                try:
                    measured = await run_peer(run)
                finally:
                    await cleanup_redis(redis_url, prefix)
                    for log in run.logs:
                        log.unlink(missing_ok=True)
            rounds[name].append(measured)
            loads.append(_load())
            print(f"round {number} {name:<9} publish {measured.publish_s:7.2f} s  callback {measured.callback_s:7.2f} s"
                  f"  worker CPU {measured.worker_cpu_s:7.2f} s  publisher CPU {measured.publisher_cpu_s:6.2f} s"
                  f"  Redis CPU {measured.redis_cpu_s:6.2f} s  RabbitMQ CPU {measured.rabbitmq_cpu_s:6.2f} s"
                  f"  results {measured.results} ok={measured.ok}  load {loads[-1]}", flush=True)
            if not measured.ok or measured.results != args.count:
                raise SystemExit(f"{name}: the callback saw wrong results; no table")
    medians = {name: {key: statistics.median(getattr(m, key) for m in ms) for key, _ in COLUMNS}
               for name, ms in rounds.items()}
    print(f"\nmedians of {args.rounds} round(s), {args.count} members; ratio = celery / eventbus "
          f"(above 1: eventbus is faster / cheaper)")
    print(f"{'':<18}" + "".join(f"{name:>12}" for name in medians) + ("       ratio" if len(medians) == 2 else ""))
    for key, label in COLUMNS:
        line = f"{label:<18}" + "".join(f"{medians[name][key]:12.2f}" for name in medians)
        if set(medians) == {"eventbus", "celery"} and medians["eventbus"][key] > 0:
            line += f"{medians['celery'][key] / medians['eventbus'][key]:12.2f}"
        print(line)
    for name, m in medians.items():
        print(f"{name}: {args.count / m['callback_s']:,.0f} members/s to the callback, "
              f"{m['worker_cpu_s'] / args.count * 1e6:,.0f} worker CPU µs per member")
    print("* the shared services' CPU over the same span: other sessions' load included, not attributable")
    print(f"load average after each round: {', '.join(loads)}")
    if args.json_out:
        args.json_out.write_text(json.dumps({
            "count": args.count, "rounds": args.rounds, "prefetch": args.prefetch, "warmup": args.warmup,
            "celery": version("celery"), "loads": loads,
            "per_round": {name: [asdict(m) for m in ms] for name, ms in rounds.items()},
            "medians": medians,
        }, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
