"""Liveness, readiness and the Prometheus endpoint of an in-process service (SQLite, the in-memory
broker of ``eventbus.testing``: nothing here needs RabbitMQ itself)."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from context_handling.app import ContextHandlingService
from context_handling.settings import ServiceSettings
from eventbus import BusSettings
from eventbus.testing import MemoryBroker, in_memory


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def test_probes_and_metrics(tmp_path: Path) -> None:
    with in_memory(MemoryBroker()):
        service = ContextHandlingService(
            ServiceSettings(
                bus=BusSettings("context-health"), database_url=f"sqlite:///{tmp_path / 'c.db'}",
                http=("127.0.0.1", 0), scheduler=False,
            )
        )
    await service.prepare()
    assert service.ready() == (False, "not consuming")
    assert service.alive() == (True, "ok")
    await service.start()
    try:
        assert service.http is not None
        base = service.http.url
        assert get(f"{base}/healthz") == (200, "ok\n")
        assert get(f"{base}/readyz") == (200, "ready\n")
        assert get(f"{base}/nope")[0] == 404
        status, text = get(f"{base}/metrics")
        assert status == 200
        for name in (
            "context_events_consumed_total",
            "context_events_retried_total",
            "context_events_parked_total",
            "context_processing_seconds_bucket",
            "context_batch_size_bucket",
            'context_pairs{status="friend"} 0.0',
            "context_outbox_backlog 0.0",
            "context_outbox_relayed_total",
            "context_scheduler_leader 0.0",
        ):
            assert name in text, name
    finally:
        await service.stop(grace=5)
    assert service.ready() == (False, "not consuming")
