"""Per-key order through the outbox while relays are SIGKILLed at every point of a batch's life.

Two producer threads change a few hundred keys (a state row and an outbox row per change, one
transaction); two relay processes publish the rows, each SIGKILLed at a point of its schedule and
started again; a queue on the real broker records every event in arrival order. For every key, the
sequences it received never go down, the last event is the stored state, and no row is lost.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from itertools import pairwise
from pathlib import Path

import pytest
import sqlalchemy as sa

from eventbus import Outbox, OutboxEntry, create_sql_engine, run_transaction
from eventbus_contracts import REGISTRY, FriendshipStatusChangedV1

from ..conftest import RawBroker
from .test_outbox_order import T0

pytestmark = [pytest.mark.broker, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
KEYS = 300
CHANGES_PER_PRODUCER = 1500
# What each relay slot dies of, in turn: every point of a batch's life, and plain timers (seconds).
SCHEDULES = [
    ["claimed:3", "published:2", "inflight:4", "recorded:3", "timer:0.5"],
    ["timer:1.2", "recorded:1", "claimed:6", "inflight:1", "published:4"],
]


class RelayProcess:
    def __init__(self, env: dict[str, str], kill: str, log: Path) -> None:
        self.kill_spec = kill
        point = "" if kill.startswith("timer:") or not kill else kill
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.sdk._killable_relay"], cwd=ROOT, stdout=out, stderr=out,
                env={**os.environ, **env, "RELAY_KILL": point},
            )
        self.started = time.monotonic()
        self.timer = float(kill.split(":")[1]) if kill.startswith("timer:") else None

    def tick(self) -> bool:
        """Fire the timer kill when due; True once the process has died of its kill."""
        if self.timer is not None and self.process.poll() is None and time.monotonic() - self.started >= self.timer:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        code = self.process.poll()
        if code is not None and code != -signal.SIGKILL:
            raise AssertionError(f"relay exited with {code}, not by SIGKILL:\n{self.log.read_text()}")
        return code is not None


def produce(
    engine: sa.Engine, outbox: Outbox, state: sa.Table, seed: int, stop: threading.Event, done: list[int]
) -> None:
    """Change random keys, 1 to 6 per transaction: the state row and the event that announces it;
    at least ``CHANGES_PER_PRODUCER`` changes, and on until ``stop`` (every kill point needs rows)."""
    rng = random.Random(seed)
    written = 0
    while written < CHANGES_PER_PRODUCER or not stop.is_set():
        keys = sorted(rng.sample(range(KEYS), rng.randint(1, 6)))

        def change(connection: sa.Connection, keys: list[int] = keys) -> None:
            entries = []
            for key in keys:  # sorted: concurrent producers lock state rows in one order
                value = connection.execute(
                    state.update().where(state.c.key == key).values(value=state.c.value + 1).returning(state.c.value)
                ).scalar_one()
                event = FriendshipStatusChangedV1(
                    user_a=f"k{key}", user_b="z", previous_status="stranger", status="friend", score=1.0,
                    changed_at=T0, cause="conversation", conversation_id=f"v{value}",
                )
                entries.append(OutboxEntry(event, event_id=f"{seed}-{key}-{value}", partition_key=f"k{key}"))
            outbox.add_many(connection, entries)

        run_transaction(engine, change)
        written += len(keys)
        time.sleep(rng.uniform(0, 0.004))
    done.append(written)


def test_relays_killed_at_every_point_keep_each_keys_order_and_lose_nothing(
    postgres_url: str, broker_url: str, service: str, raw: RawBroker, tmp_path: Path
) -> None:
    engine = create_sql_engine(postgres_url, pool_size=4)
    outbox = Outbox(REGISTRY)
    outbox.create_schema(engine)
    state = sa.Table("order_state", sa.MetaData(), sa.Column("key", sa.Integer, primary_key=True),
                     sa.Column("value", sa.Integer, nullable=False))
    state.create(engine)
    with engine.begin() as connection:
        connection.execute(state.insert(), [{"key": k, "value": 0} for k in range(KEYS)])
    tap = f"{service}.tap"
    raw.channel.exchange_declare("context", exchange_type="topic", durable=True)
    raw.channel.queue_declare(tap, durable=True)
    raw.track(tap)
    raw.channel.queue_bind(tap, "context", routing_key="context.friendship.status_changed.v1")

    env = {"RELAY_DATABASE_URL": postgres_url, "RELAY_BROKER_URL": broker_url, "RELAY_SERVICE": service}
    done: list[int] = []
    stop = threading.Event()
    producers = [
        threading.Thread(target=produce, args=(engine, outbox, state, seed, stop, done)) for seed in (1, 2)
    ]
    began = time.monotonic()
    for producer in producers:
        producer.start()
    kills: list[str] = []
    relays: list[RelayProcess | None] = [None, None]
    schedules = [list(s) for s in SCHEDULES]
    try:
        # Keep both slots busy with a relay that will die, until every kill of the schedules happened.
        deadline = time.monotonic() + 120
        while any(schedules) or any(r is not None for r in relays):
            assert time.monotonic() < deadline, f"kill points not reached in time; reached: {kills}"
            for slot in (0, 1):
                relay = relays[slot]
                if relay is not None and relay.tick():
                    kills.append(relay.kill_spec)
                    relays[slot] = relay = None
                if relay is None and schedules[slot]:
                    relays[slot] = RelayProcess(env, schedules[slot].pop(0), tmp_path / f"relay{slot}.log")
            raw.connection.sleep(0.02)
        stop.set()
        for producer in producers:
            producer.join()
        # Then a relay that is left alone drains what is left (dead relays' leases run out first).
        final = RelayProcess(env, "", tmp_path / "final.log")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                if outbox.pending_count(connection) == 0:
                    break
            raw.connection.sleep(0.1)
        final.process.send_signal(signal.SIGTERM)
        assert final.process.wait(timeout=30) == 0, final.log.read_text()
    finally:
        stop.set()
        for relay in relays:
            if relay is not None and relay.process.poll() is None:
                relay.process.kill()
        for producer in producers:
            producer.join(timeout=60)

    with engine.connect() as connection:
        assert outbox.pending_count(connection) == 0, "every row was eventually published"
        stored = dict(connection.execute(sa.select(state.c.key, state.c.value)).all())
        t = outbox.table
        rows = connection.execute(sa.select(t.c.event_id, t.c.partition_key, t.c.sequence)).all()
    engine.dispose()
    elapsed = time.monotonic() - began

    arrivals: list[tuple[str, str, int, str]] = []  # (event id, key, sequence, value) in arrival order
    while True:
        method, properties, body = raw.channel.basic_get(tap, auto_ack=True)
        if method is None:
            break
        headers = properties.headers or {}
        if headers.get("cloudEvents_source") != f"/services/{service}":
            continue
        value = FriendshipStatusChangedV1.model_validate_json(body).conversation_id or ""
        arrivals.append(
            (properties.message_id, headers["cloudEvents_partitionkey"], int(headers["cloudEvents_sequence"]), value)
        )

    assert sorted(kills) == sorted(k for s in SCHEDULES for k in s), "every kill point was reached"
    assert {a[0] for a in arrivals} == {r[0] for r in rows}, "nothing lost, nothing foreign"
    by_key: dict[str, list[tuple[int, str]]] = {}
    for _, key, sequence, value in arrivals:
        by_key.setdefault(key, []).append((sequence, value))
    last_sequence: dict[str, int] = {}
    for _, key, sequence in rows:
        last_sequence[key] = max(sequence, last_sequence.get(key, 0))
    went_back = [key for key, got in by_key.items() if any(a[0] > b[0] for a, b in pairwise(got))]
    stale = [key for key, got in by_key.items() if got[-1] != (last_sequence[key], f"v{stored[int(key[1:])]}")]
    changed = {k for k, v in stored.items() if v}
    copies = len(arrivals) - len(rows)
    print(
        f"\noutbox order under SIGKILL: {sum(done)} changes of {len(changed)} keys, {len(kills)} relay kills "
        f"({', '.join(kills)}); {len(arrivals)} deliveries ({copies} re-published copies); "
        f"keys checked {len(by_key)}, out of order {len(went_back)}, stale finals {len(stale)}; {elapsed:.0f} s"
    )
    assert len(by_key) == len(changed)
    assert went_back == [], "a key's sequence went down in arrival order"
    assert stale == [], "the last event of a key is not its stored state"
    assert copies > 0, "some kill landed between a confirm and its record (the window the lease covers)"
