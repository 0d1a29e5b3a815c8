"""``eventbus revoke`` and ``eventbus workflow cancel`` as a user runs them (a subprocess), on the real
Redis (keys named by fresh UUIDs, deleted afterwards) and a private vhost."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pika
import pytest
import redis

from eventbus.workflows._reports import CANCELLED, REPORTS_EXCHANGE

from .._databases import REDIS_URL
from .._processes import ROOT
from .._vhosts import amqp_url, private_vhost
from ._run import eventbus

pytestmark = [pytest.mark.broker, pytest.mark.redis]

PREFIX = "eventbus:revoked:"  # the key on the wire (docs/wire-format.md, Cancel and revoke)


@pytest.fixture
def ids() -> Iterator[list[str]]:
    """Fresh ids whose revocation keys are deleted after the test."""
    made: list[str] = []
    yield made
    client = redis.Redis.from_url(REDIS_URL)
    try:
        if made:
            client.delete(*(PREFIX + i for i in made))
    finally:
        client.close()


def _new(ids: list[str]) -> str:
    ids.append(str(uuid.uuid4()))
    return ids[-1]


def test_revoke_writes_the_key_the_workers_check(ids: list[str]) -> None:
    event_id = _new(ids)
    done = eventbus("revoke", event_id, "--ttl-days", "1", cwd=ROOT, env={"EVENTBUS_REVOCATIONS_URL": REDIS_URL})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"revoked {event_id}"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert 86000 < client.ttl(PREFIX + event_id) <= 86400
    finally:
        client.close()


def test_workflow_cancel_writes_the_key_and_reports_the_cancel(ids: list[str]) -> None:
    workflow_id = _new(ids)
    with private_vhost("revoke-cli") as vhost:
        url = amqp_url(vhost)
        connection = pika.BlockingConnection(pika.URLParameters(url))
        try:
            channel = connection.channel()
            channel.exchange_declare(REPORTS_EXCHANGE, exchange_type="topic", durable=True)
            tap = channel.queue_declare("", exclusive=True).method.queue
            channel.queue_bind(tap, REPORTS_EXCHANGE, routing_key="#")
            done = eventbus("workflow", "cancel", workflow_id, "--store", REDIS_URL, "--url", url, cwd=ROOT)
            assert done.returncode == 0, done.stderr
            method, _, body = channel.basic_get(tap, auto_ack=True)
            assert method is not None and method.routing_key == CANCELLED.type
            assert CANCELLED.decode(body).workflow_id == workflow_id
        finally:
            connection.close()
    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert client.exists(PREFIX + workflow_id) == 1
    finally:
        client.close()


def test_without_a_store_or_with_redis_down_it_says_so() -> None:
    done = eventbus("revoke", "x", cwd=ROOT, env={"EVENTBUS_REVOCATIONS_URL": ""})
    assert done.returncode == 1
    assert "EVENTBUS_REVOCATIONS_URL" in done.stderr and "Traceback" not in done.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = eventbus("revoke", "x", "--store", f"redis://127.0.0.1:{port}/0", cwd=ROOT)
    assert done.returncode == 1
    assert "did not answer" in done.stderr and "Traceback" not in done.stderr
