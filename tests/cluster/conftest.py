"""Cluster suite fixtures: a real 3-node RabbitMQ cluster for the session, a private vhost per test.

The cluster (``cluster.py``) is started once per session, or reused when one is already running
healthy (``python -m tests.cluster.cluster start``), and stopped at the end only if this session
started it. Every test works in a vhost of its own, deleted afterwards, and restarts any node it
killed. The figures of each scenario (published, confirmed, consumed, lost, time to recover) are
printed at the end of the run.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from eventbus import BusSettings

from .cluster import Cluster, Node


@dataclass
class Figures:
    scenario: str
    values: dict[str, Any] = field(default_factory=dict)


FIGURES: list[Figures] = []


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> dict[str, Any]:
    entry = Figures(request.node.name.removeprefix("test_"))
    FIGURES.append(entry)
    return entry.values


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("cluster suite figures")
    for entry in FIGURES:
        terminalreporter.write_line(f"{entry.scenario}:")
        terminalreporter.write_line("    " + ", ".join(f"{k}={v}" for k, v in entry.values.items()))


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    if shutil.which("rabbitmq-server") is None or shutil.which("rabbitmqctl") is None:
        pytest.skip("the cluster suite needs RabbitMQ installed (rabbitmq-server, rabbitmqctl)")
    nodes = Cluster(3)
    nodes.start()
    yield nodes
    if nodes.started_here:
        nodes.stop()


@pytest.fixture
def healthy_cluster(cluster: Cluster) -> Iterator[Cluster]:
    """The cluster, with every node it killed booted again after the test."""
    yield cluster
    for node in cluster.nodes:
        if cluster.pid(node) is None:
            cluster.restart(node)


@pytest.fixture
def vhost(healthy_cluster: Cluster) -> Iterator[str]:
    name = f"cluster-{uuid.uuid4().hex[:10]}"
    healthy_cluster.add_vhost(name)
    yield name
    healthy_cluster.delete_vhost(name)


def cluster_settings(service: str, urls: list[str], **changes: Any) -> BusSettings:
    """Every node's URL; settings that notice a dead node quickly (2 s heartbeats, 3 s connects)."""
    values: dict[str, Any] = {
        "service": service, "urls": tuple(urls), "heartbeat": 2, "confirm_timeout": 15.0, "connect_timeout": 3.0,
        "reconnect_window": 30.0, "shutdown_grace": 5.0, "prefetch": 300,
    }
    values.update(changes)
    return BusSettings(**values)


async def kill_and_restart(cluster: Cluster, node: Node, after: float = 5.0) -> asyncio.Task[float]:
    """SIGKILL ``node`` now; the task boots it again ``after`` seconds later (its boot overlaps the
    test's work) and returns when it is back: the seconds from the kill to the restart's start."""
    await asyncio.to_thread(cluster.kill, node)
    killed = time.monotonic()

    async def restart() -> float:
        await asyncio.sleep(after)
        started = time.monotonic() - killed
        await asyncio.to_thread(cluster.restart, node)
        return started

    return asyncio.create_task(restart())
