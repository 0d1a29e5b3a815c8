"""The Celery peer of ``bench/chord.py``: a chord of ``square`` members and one ``collect`` callback.

``bench/chord.py`` runs its worker as ``celery -A bench._celery_chord_app worker -P prefork -c 2`` from the
repository root and publishes the chord from its own process with the same module. Everything private
comes from the environment the harness sets, so the workers and the publisher agree:

- ``BENCH_CHORD_BROKER``: the AMQP URL of the private vhost the harness made for the round;
- ``BENCH_CHORD_BACKEND``: the Redis result backend (``redis://127.0.0.1:6379/<private db>``);
- ``BENCH_CHORD_KEYPREFIX``: the key prefix of every backend key of the round (removed afterwards);
- ``BENCH_CHORD_PREFETCH``: the prefetch per worker process (the multiplier: ``-c 2`` takes twice it).

The work is the eventbus side's, in the same pydantic models (``bench/_chord_work.py``): a member validates
its input and returns the square, the callback validates every result, checks count and order, and
pushes ``{"t": time, "count", "ok"}`` to the Redis list the harness waits on.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from kombu import Exchange, Queue

from bench._chord_work import check_results, signal_done, square_of

QUEUE = "bench-celery-chord"
_BACKEND = os.environ.get("BENCH_CHORD_BACKEND", "redis://127.0.0.1:6379/13")

app = Celery(
    "bench_chord",
    broker=os.environ.get("BENCH_CHORD_BROKER", "amqp://guest:guest@127.0.0.1:5672//"),
    backend=_BACKEND,
)
app.conf.update(
    # a quorum queue, as the eventbus task queues are by default
    task_queues=[Queue(QUEUE, Exchange("bench.celery.chord", type="direct"), routing_key=QUEUE,
                       queue_arguments={"x-queue-type": "quorum"})],
    task_default_queue=QUEUE,
    task_default_exchange="bench.celery.chord",
    task_default_routing_key=QUEUE,
    worker_prefetch_multiplier=int(os.environ.get("BENCH_CHORD_PREFETCH", "100")),
    result_backend_transport_options={"global_keyprefix": os.environ.get("BENCH_CHORD_KEYPREFIX", "bench-chord:")},
    result_expires=3600,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="bench.chord.square")
def square(n: int) -> dict[str, int]:
    return square_of({"n": n})


@app.task(name="bench.chord.collect")
def collect(results: list[dict[str, Any]], count: int, done_key: str) -> None:
    ok = check_results(results, count)
    signal_done(_BACKEND, done_key, len(results), ok)
