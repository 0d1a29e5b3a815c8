"""The service's periodic jobs through the SDK scheduler: two replicas, fast crons, one run per tick."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from context_handling.app import ContextHandlingService
from context_handling.cache import MemoryCandidateCache
from context_handling.processor import ConversationProcessor, Incoming
from context_handling.settings import ServiceSettings
from context_handling.storage import Storage
from eventbus import BusSettings, create_sql_engine
from eventbus_contracts import FRIENDSHIP_STATUS_CHANGED_V1

from ..conftest import RawBroker
from ..sdk.test_scheduler import eventually
from ._conversations import T0, conversation

pytestmark = [pytest.mark.broker, pytest.mark.postgres]


@pytest.fixture
def queues(raw: RawBroker, service: str) -> Iterator[None]:
    raw.track(f"{service}.scheduler.ticks")
    yield


async def test_two_replicas_decay_each_tick_once(postgres_url: str, settings: BusSettings, queues: None) -> None:
    engine = create_sql_engine(postgres_url)
    storage = Storage(engine, service=settings.service)
    storage.migrate()
    # a friend pair last seen long ago: the first decay tick lowers it, later ticks find nothing to do
    a, b = f"a{uuid.uuid4().hex[:8]}", f"b{uuid.uuid4().hex[:8]}"  # nobody else's conversations touch them
    ConversationProcessor(storage, MemoryCandidateCache(60)).process(
        [
            Incoming(f"e{n}", conversation(n, [a, b], T0 + timedelta(minutes=n), minutes=90, messages={a: 30, b: 30}))
            for n in range(3)
        ]
    )
    config = ServiceSettings(
        bus=settings,
        database_url=postgres_url,
        http=None,
        scheduler_lock_retry=0.2,
        decay_cron="* * * * * *",
        fallback_cron="* * * * * */2",
    )
    replicas = [ContextHandlingService(config), ContextHandlingService(config)]
    ticks = storage.ticks.table

    def done(job: str) -> list[str]:
        with engine.connect() as connection:
            query = sa.select(ticks.c.tick_id).where(ticks.c.state == "done", ticks.c.tick_id.startswith(f"job:{job}:"))
            return sorted(connection.execute(query).scalars())

    try:
        for replica in replicas:
            await replica.start()
        await eventually(lambda: len(done("decay-recompute")) >= 4 and len(done("fallback")) >= 2, 30)
        firing = [r for r in replicas if r.scheduler.stats.fired]
        assert len(firing) == 1, "one replica fires the ticks"
    finally:
        # schedulers first and together, so that no failover starts while the replicas shut down
        await asyncio.gather(*(replica.scheduler.stop() for replica in replicas))
        for replica in replicas:
            await replica.stop(grace=5)
    ran = sum(r.scheduler.stats.ran for r in replicas)
    assert ran == len(done("decay-recompute")) + len(done("fallback")), "every done tick ran exactly once"
    with engine.connect() as connection:
        t = storage.outbox.table
        rows = connection.execute(
            sa.select(t.c.data).where(t.c.subject == f"{a}/{b}", t.c.event_type.endswith("status_changed.v1"))
        ).scalars()
        changes = [FRIENDSHIP_STATUS_CHANGED_V1.decode(data) for data in rows]
        final = next(p for p in storage.all_pairs(connection) if (p.user_a, p.user_b) == (a, b))
    decays = [c for c in changes if c.cause.value == "decay"]
    assert len(decays) == 1, "the first tick lowered the pair; the later ones had nothing to do"
    assert decays[0].previous_status.value == "friend" and decays[0].status.value == final.status.value
    assert final.state.decayed_status(datetime.now(UTC)) is None
    engine.dispose()
