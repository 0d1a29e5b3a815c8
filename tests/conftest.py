"""Fixtures for tests that talk to the real RabbitMQ on 127.0.0.1:5672.

Every broker test gets its own service name, so its queues (``<service>.<type>`` and ``.dlq``)
are its own; they are deleted afterwards. Nothing here fakes the broker.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
import pytest

from eventbus import DEFAULT_URL, BusSettings

pytest_plugins = ["tests._databases"]

BROKER_URL = os.environ.get("EVENTBUS_TEST_URL", DEFAULT_URL)
# Every Go process the tests start (go test, the harnesses, the corpus) checks each event the Go
# runtime's quick check calls valid against gojsonschema as well, and panics on a disagreement:
# the proof that the fast path never accepts what the full validator refuses (docs/runtime-go.md).
os.environ.setdefault("EVENTBUS_GO_VALIDATION_CROSSCHECK", "1")


@dataclass
class RawMessage:
    routing_key: str
    exchange: str
    properties: pika.BasicProperties
    body: bytes

    @property
    def headers(self) -> dict[str, Any]:
        return dict(self.properties.headers or {})


class RawBroker:
    """Plain pika access for setting up and inspecting what the SDK did."""

    def __init__(self, url: str) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self._queues: list[str] = []

    def track(self, *queues: str) -> None:
        self._queues.extend(queues)

    def declare_tap(self, exchange: str, routing_key: str) -> str:
        """An exclusive queue that receives a copy of everything published with the key."""
        self.channel.exchange_declare(exchange, exchange_type="topic", durable=True)
        queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.queue_bind(queue, exchange, routing_key=routing_key)
        return queue

    def get(self, queue: str, count: int, timeout: float = 10.0) -> list[RawMessage]:
        """Take ``count`` messages from ``queue`` (acked), waiting up to ``timeout`` seconds."""
        found: list[RawMessage] = []
        deadline = time.monotonic() + timeout
        while len(found) < count and time.monotonic() < deadline:
            method, properties, body = self.channel.basic_get(queue, auto_ack=True)
            if method is None:
                self.connection.sleep(0.05)
                continue
            found.append(RawMessage(method.routing_key, method.exchange, properties, body))
        return found

    def find(self, queue: str, message_id: str, timeout: float = 10.0) -> list[RawMessage]:
        """Messages on ``queue`` with ``message_id``, skipping what other publishers sent meanwhile."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = self.get(queue, 500, timeout=0.5)
            matches = [m for m in batch if m.properties.message_id == message_id]
            if matches:
                return matches + [m for m in self.get(queue, 500, timeout=0.2) if m.properties.message_id == message_id]
        return []

    def depth(self, queue: str) -> int:
        return self.channel.queue_declare(queue, passive=True).method.message_count

    def publish(self, exchange: str, routing_key: str, body: bytes, properties: pika.BasicProperties) -> None:
        self.channel.basic_publish(exchange, routing_key, body, properties)

    def close(self) -> None:
        from eventbus_contracts import REGISTRY

        for queue in self._queues:
            try:
                # Unbind first: RabbitMQ 3.10 can crash a *publisher's* channel (541 INTERNAL_ERROR)
                # when a message is routed to a quorum queue that is being deleted. Once unbound,
                # nothing new is routed here while the delete runs.
                for contract in REGISTRY:
                    if queue.endswith(contract.type):
                        self.channel.queue_unbind(queue, contract.exchange, routing_key=contract.routing_key)
                self.channel.queue_delete(queue)
            except pika.exceptions.ChannelClosedByBroker:
                self.channel = self.connection.channel()
        if self.connection.is_open:
            self.connection.close()


@pytest.fixture
def broker_url() -> str:
    return BROKER_URL


@pytest.fixture
def service() -> str:
    """A service name no other test uses, so queues never collide."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings(service: str, broker_url: str) -> BusSettings:
    return BusSettings(service=service, urls=(broker_url,), confirm_timeout=10.0)


@pytest.fixture
def raw(broker_url: str, service: str) -> Iterator[RawBroker]:
    from eventbus_contracts import REGISTRY

    broker = RawBroker(broker_url)
    for contract in REGISTRY:
        queue = f"{service}.{contract.type}"
        broker.track(queue, queue + ".dlq")
    yield broker
    broker.close()


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()
