"""The whole service under the SDK's worker: ``eventbus worker context_handling.worker:create_bus``.

Needs the worker command and the bus's startup/shutdown hooks (the reliability work, issue 3);
skipped where the SDK has neither.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from eventbus import EventBus, consumer_queue_name

from ..conftest import RawBroker
from ..sdk.test_scheduler import eventually
from ._conversations import random_stream
from ._harness import publish_to_queue

pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(not hasattr(EventBus, "on_startup"), reason="the SDK has no worker hooks yet"),
]
ROOT = Path(__file__).resolve().parents[2]


async def test_the_worker_runs_the_whole_service_and_stops_cleanly(
    tmp_path: Path, service: str, broker_url: str, raw: RawBroker
) -> None:
    database = tmp_path / "context.db"
    env = {
        **os.environ,
        "EVENTBUS_URL": broker_url,
        "CONTEXT_SERVICE": service,
        "DATABASE_URL": f"sqlite:///{database}",
        "CONTEXT_HTTP": "off",
        "CONTEXT_SCHEDULER": "off",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "eventbus_cli", "worker", "context_handling.worker:create_bus"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    engine = sa.create_engine(f"sqlite:///{database}")
    try:
        queue = consumer_queue_name(service, "chat.conversation.ended.v1")
        await eventually(lambda: _exists(broker_url, queue), 30)
        prefix = f"w{uuid.uuid4().hex[:6]}"
        stream = random_stream(40, 8, seed=2, prefix=prefix)
        await publish_to_queue(
            broker_url, queue, [(f"{prefix}-{e.conversation_id}", e) for e in stream], source="/test"
        )

        def applied() -> int:
            with engine.connect() as connection:
                return int(connection.execute(sa.text("SELECT count(*) FROM eventbus_inbox")).scalar_one())

        await eventually(lambda: applied() >= len(stream), 30)
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err.decode()
        with engine.connect() as connection:  # the shutdown hook published what the batches wrote
            pending = connection.execute(sa.text("SELECT count(*) FROM eventbus_outbox WHERE sent_at IS NULL"))
            assert pending.scalar_one() == 0
    finally:
        if worker.poll() is None:
            worker.kill()
        engine.dispose()


def _exists(url: str, queue: str) -> bool:
    import pika
    import pika.exceptions

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        connection.channel().queue_declare(queue, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker:
        return False
    finally:
        if connection.is_open:
            connection.close()
