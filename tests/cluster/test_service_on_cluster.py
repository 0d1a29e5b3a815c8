"""The reference service (context handling) on the 3-node cluster, the node leading its queue killed
mid-stream: each conversation is applied once, and a downstream consumer sees every derived event,
whose last status per pair is the stored one."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pika
import pytest

from context_handling.storage import Storage
from eventbus import consumer_queue_name, create_sql_engine

from .._databases import REDIS_URL
from ..sdk.test_scheduler import eventually
from ..service._conversations import random_stream
from ..service._harness import ServiceProcess, publish_to_queue
from ..service.test_end_to_end import applied, assert_state_is_the_domain_cores, outbox, pending
from .cluster import Cluster
from .conftest import kill_and_restart

pytestmark = [pytest.mark.cluster, pytest.mark.postgres, pytest.mark.redis]

CONVERSATIONS = 400


@pytest.fixture
def storage(postgres_url: str) -> Iterator[Storage]:
    engine = create_sql_engine(postgres_url)
    yield Storage(engine, service="ctx-cluster")
    engine.dispose()


def _downstream(url: str, queue: str) -> None:
    """A durable quorum queue taking every derived event, as a downstream service's queue would."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.exchange_declare("context", exchange_type="topic", durable=True)
    channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_bind(queue, "context", routing_key="context.#")
    connection.close()


def _drain(url: str, queue: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(id, type, data) of everything in ``queue``, in order."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    found = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            break
        found.append((str(properties.message_id), str(properties.type), orjson.loads(body)))
    connection.close()
    return found


async def test_the_service_applies_each_conversation_once_across_a_node_kill(
    healthy_cluster: Cluster, vhost: str, postgres_url: str, redis_prefix: str, storage: Storage,
    tmp_path: Path, figures: dict[str, Any],
) -> None:
    urls = healthy_cluster.urls_for(vhost)
    queue = consumer_queue_name("ctx-cluster", "chat.conversation.ended.v1")
    process = ServiceProcess(
        {
            "EVENTBUS_URL": ",".join(urls),
            "CONTEXT_SERVICE": "ctx-cluster",
            "DATABASE_URL": postgres_url,
            "REDIS_URL": REDIS_URL,
            "CONTEXT_CACHE_PREFIX": redis_prefix,
            "CONTEXT_SCHEDULER": "off",
            "CONTEXT_HTTP": "127.0.0.1:0",
            "EVENTBUS_PREFETCH": "50",
            "CONTEXT_OUTBOX_LEASE": "3",
        },
        tmp_path / "service.log",
    )
    prefix = f"c{uuid.uuid4().hex[:6]}"
    stream = random_stream(CONVERSATIONS, 40, seed=21, prefix=prefix)
    items = [(f"{prefix}-{event.conversation_id}", event) for event in stream]
    ids = [event_id for event_id, _ in items]
    try:
        process.start()
        await process.wait_ready(timeout=60)
        leader = await asyncio.to_thread(healthy_cluster.leader, queue, vhost)
        survivor = next(url for node, url in zip(healthy_cluster.nodes, urls, strict=True) if node != leader)
        await asyncio.to_thread(_downstream, survivor, "downstream")
        await publish_to_queue(survivor, queue, items, source="/test/chat-backend")
        await eventually(lambda: applied(storage, ids) >= CONVERSATIONS // 4, 60)
        at_kill = applied(storage, ids)
        restart = await kill_and_restart(healthy_cluster, leader, after=5.0)
        await eventually(lambda: applied(storage, ids) == len(ids), 120)
        await eventually(lambda: pending(storage) == 0, 120)
        await restart
        rows = outbox(storage, prefix)
        received: list[tuple[str, str, dict[str, Any]]] = []

        async def all_received() -> bool:
            received.extend(await asyncio.to_thread(_drain, survivor, "downstream"))
            return {i for i, _, _ in received} >= {i for i, _ in rows}

        for _ in range(120):
            if await all_received():
                break
            await asyncio.sleep(0.5)
        assert process.terminate() == 0, process.log
    finally:
        process.ensure_stopped()
    assert at_kill < len(ids), "the kill should land mid-stream"
    assert_state_is_the_domain_cores(storage, stream, prefix)  # each conversation applied once
    row_ids = [i for i, _ in rows]
    assert len(row_ids) == len(set(row_ids))
    first: dict[str, dict[str, Any]] = {}
    for event_id, _, data in received:
        first.setdefault(event_id, data)
    assert set(first) == set(row_ids), "downstream got every derived event, and nothing else"
    last: dict[tuple[str, str], str] = {}
    for event_id, event_type in rows:  # in commit order
        if event_type == "context.friendship.status_changed.v1":
            data = first[event_id]
            last[data["user_a"], data["user_b"]] = data["status"]
    with storage.engine.connect() as connection:
        final = {(p.user_a, p.user_b): p.status.value for p in storage.all_pairs(connection)}
    assert last and all(final[pair] == status for pair, status in last.items())
    figures.update(conversations=len(ids), applied_at_kill=at_kill, killed=leader.name, derived=len(row_ids),
                   downstream_copies=len(received), duplicates_dropped_by_id=len(received) - len(first))
