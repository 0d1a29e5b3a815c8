"""The eventbus side of ``bench/chord.py``: the ``square`` and ``collect`` tasks and the workflow engine.

``bench/chord.py`` runs two workers, each ``eventbus worker bench._eventbus_chord_app:bus`` from the
repository root, and starts the chord from its own process with the same module's tasks. Both workers
run the steps (two task queues) and the engine (``eventbus.workflow.engine``, the chord's join in
Redis), competing on every queue. Everything private comes from the environment the harness sets:

- ``BENCH_CHORD_BROKER``: the AMQP URL of the private vhost the harness made for the round;
- ``BENCH_CHORD_BACKEND``: the engine's Redis (``redis://127.0.0.1:6379/<private db>``);
- ``BENCH_CHORD_KEYPREFIX``: the prefix of every Redis key of the round (removed afterwards);
- ``BENCH_CHORD_PREFETCH``: the prefetch per worker process.

The work is Celery's (``bench/_chord_work.py``): a member's input is validated against the contract made
from its signature (``n: int``, closed, as ``Number``), it returns ``Squared``; the callback validates the
results against its contract (``list[Squared]``), checks count and order and signals the harness.
"""

from __future__ import annotations

import os

from bench._chord_work import Squared, check_results, signal_done
from eventbus import BusSettings, EventBus, EventContract
from eventbus.workflow_engine import WorkflowEngine

_schema = Squared.model_json_schema()
_schema["$id"] = "https://eventbus.dev/bench/squared.json"
SQUARED: EventContract[Squared] = EventContract(type="bench.chord.squared.v1", exchange="bench.chord",
                                                model=Squared, schema=_schema)
BACKEND = os.environ.get("BENCH_CHORD_BACKEND", "redis://127.0.0.1:6379/13")

bus = EventBus(BusSettings(
    urls=(os.environ.get("BENCH_CHORD_BROKER", "amqp://guest:guest@127.0.0.1:5672/%2F"),),
    service="bench-chord",
    prefetch=int(os.environ.get("BENCH_CHORD_PREFETCH", "100")),
))
engine = WorkflowEngine(bus, BACKEND, prefix=os.environ.get("BENCH_CHORD_KEYPREFIX", "bench-chord:"), ttl=3600)


@bus.task
async def square(n: int) -> Squared:
    return Squared(n=n, square=n * n)


@bus.task
async def collect(results: list[Squared], count: int, done_key: str) -> None:
    signal_done(BACKEND, done_key, len(results), check_results(results, count))
