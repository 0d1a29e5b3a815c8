"""Running ``context-handling run`` as a real process, and watching what it publishes.

``ServiceProcess`` starts the console script with an environment of its own (unique service name,
database schema and Redis prefix), waits for its "ready" log line, reads its /metrics, and can
stop it with SIGTERM or kill it with SIGKILL. ``DerivedTap`` records every derived event the
service's source publishes, from an exclusive queue bound before the service starts.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import orjson

from eventbus import contract_for

ROOT = Path(__file__).resolve().parents[2]


class ServiceProcess:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.metrics_url = ""

    def start(self) -> None:
        self.log_path.write_text("")  # each run gets its own log
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "context_handling", "run"], cwd=ROOT, env=self.env, stdout=log, stderr=log
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while "context_handling: ready" not in self.log:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"the service exited with {self.process.returncode}:\n{self.log}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the service did not become ready:\n{self.log}")
            await asyncio.sleep(0.05)
        found = re.findall(r"health and metrics on (http://\S+)", self.log)
        self.metrics_url = found[-1] if found else ""

    def metrics(self) -> dict[str, float]:
        """The samples of /metrics as ``{'name{labels}': value}``."""
        with urllib.request.urlopen(f"{self.metrics_url}/metrics", timeout=5) as response:
            text = response.read().decode()
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"{self.metrics_url}{path}", timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def ensure_stopped(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@dataclass
class Derived:
    id: str
    type: str
    subject: str
    data: dict[str, Any]


@dataclass
class DerivedTap:
    """Every message from ``source`` on the ``context`` exchange, in arrival order."""

    url: str
    source: str
    received: list[Derived] = field(default_factory=list)
    _connection: Any = None

    async def start(self) -> None:
        self._connection = await aio_pika.connect(self.url)
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=1000)
        exchange = await channel.declare_exchange("context", aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue("", exclusive=True)
        await queue.bind(exchange, routing_key="context.#")
        await queue.consume(self._on_message, no_ack=True)

    async def _on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        headers = message.headers or {}
        if headers.get("cloudEvents_source") != self.source:
            return  # another test's or service's event on the shared broker
        subject = headers.get("cloudEvents_subject", "")
        self.received.append(
            Derived(str(message.message_id), str(message.type), str(subject), orjson.loads(message.body))
        )

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()


async def publish_to_queue(url: str, queue: str, items: list[tuple[str, Any]], *, source: str) -> None:
    """Publish (event id, event) pairs as CloudEvents straight to ``queue`` (default exchange), confirmed.

    Going around the ``chat`` exchange keeps the test's events out of every other queue bound
    there on the shared broker.
    """
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        gate = asyncio.Semaphore(200)

        async def one(event_id: str, event: Any) -> None:
            contract = contract_for(event)
            message = aio_pika.Message(
                contract.encode(event),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=event_id,
                type=contract.type,
                headers={
                    "cloudEvents_specversion": "1.0",
                    "cloudEvents_id": event_id,
                    "cloudEvents_source": source,
                    "cloudEvents_type": contract.type,
                    "cloudEvents_time": event.ended_at.isoformat(),
                    "cloudEvents_subject": event.conversation_id,
                },
            )
            async with gate:
                await channel.default_exchange.publish(message, routing_key=queue, mandatory=True)

        await asyncio.gather(*(one(i, e) for i, e in items))
    finally:
        await connection.close()
