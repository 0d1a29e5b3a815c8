"""Prometheus metrics and the health/readiness HTTP endpoint.

    GET /healthz   200 while the batch writer and the outbox relay are alive, else 503
    GET /readyz    200 once consuming and the database answers, else 503 with the reason
    GET /metrics   Prometheus text format

The server is the standard library's WSGI server in a daemon thread (prometheus-client's own
WSGI app serves /metrics), so probes are answered even while the event loop is busy.

Metrics (prefix ``context_``): events consumed by outcome, retried deliveries, parked events by
reason, processing latency (receipt to commit) and batch size histograms, derived events by
type, the outbox backlog and relay results, pairs by status, scheduler ticks and leadership, and the
pairs the decay recomputes examined and lowered (counted where the recompute's report is recorded).
Backlog and pair counts are read from the database when scraped, at most every few seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Histogram, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from eventbus import ConfigurationError

__all__ = ["HealthServer", "ServiceMetrics"]

log = logging.getLogger("context_handling.http")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 200, 300, 500, 1000)


class ServiceMetrics:
    """The service's own registry (not the global one), so several instances can share a process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.consumed = Counter(
            "context_events_consumed", "Conversation events handled, by outcome.", ["outcome"], registry=r
        )
        self.retried = Counter("context_events_retried", "Deliveries that were redeliveries or retries.", registry=r)
        self.parked = Counter(
            "context_events_parked", "Events sent to the dead-letter queue, by reason.", ["reason"], registry=r
        )
        self.latency = Histogram(
            "context_processing_seconds", "From delivery to commit, per event.", buckets=LATENCY_BUCKETS, registry=r
        )
        self.batch_size = Histogram(
            "context_batch_size", "Events per database transaction.", buckets=BATCH_BUCKETS, registry=r
        )
        self.derived = Counter(
            "context_derived_events", "Derived events written to the outbox, by type.", ["type"], registry=r
        )
        self.decay_examined = Counter(
            "context_decay_pairs_examined", "Pairs examined by decay recomputes recorded here.", registry=r
        )
        self.decay_lowered = Counter(
            "context_decay_pairs_lowered",
            "Pairs lowered by decay recomputes recorded here, by new status.",
            ["status"],
            registry=r,
        )
        self.decay_failed = Counter(
            "context_decay_failed", "Decay recomputes whose shard failed for good (on_error ran here).", registry=r
        )

    def watch(self, collector: Collector) -> None:
        self.registry.register(collector)


class SampledCollector(Collector):
    """Gauges and counters computed by ``sample()`` at scrape time, cached for ``max_age`` seconds."""

    def __init__(self, sample: Callable[[], Iterable[Any]], max_age: float = 5.0) -> None:
        self._sample = sample
        self._max_age = max_age
        self._cached: list[Any] = []
        self._at = 0.0
        self._lock = threading.Lock()

    def collect(self) -> Iterable[Any]:
        with self._lock:
            if time.monotonic() - self._at > self._max_age:
                try:
                    self._cached = list(self._sample())
                except Exception as exc:  # a scrape must not fail because the database is down
                    log.warning("metrics sample failed: %s: %s", type(exc).__name__, exc)
                self._at = time.monotonic()
            return list(self._cached)

    def describe(self) -> Iterable[Any]:
        return []


def gauge(name: str, documentation: str, values: dict[tuple[str, ...], float], labels: list[str]) -> Any:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for label_values, value in values.items():
        family.add_metric(list(label_values), value)
    return family


def counter(name: str, documentation: str, values: dict[tuple[str, ...], float], labels: list[str]) -> Any:
    family = CounterMetricFamily(name, documentation, labels=labels)
    for label_values, value in values.items():
        family.add_metric(list(label_values), value)
    return family


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class HealthServer:
    """/healthz, /readyz and /metrics on ``address`` (port 0 picks a free port; see ``port``)."""

    def __init__(
        self,
        address: tuple[str, int],
        metrics: ServiceMetrics,
        *,
        alive: Callable[[], tuple[bool, str]],
        ready: Callable[[], tuple[bool, str]],
    ) -> None:
        self._metrics_app = make_wsgi_app(metrics.registry)
        self._alive = alive
        self._ready = ready
        try:
            self._server = make_server(
                address[0], address[1], self._app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
            )
        except OSError as exc:
            raise ConfigurationError(
                f"cannot serve health and metrics on {address[0]}:{address[1]} (CONTEXT_HTTP): {exc.strerror or exc}"
            ) from None
        self._thread = threading.Thread(target=self._server.serve_forever, name="context-handling:http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._server.server_address[0]}:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return self._metrics_app(environ, start_response)
        if path in ("/healthz", "/readyz"):
            ok, reason = (self._alive if path == "/healthz" else self._ready)()
            status = "200 OK" if ok else "503 Service Unavailable"
            start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
            return [f"{reason}\n".encode()]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found: try /healthz, /readyz or /metrics\n"]
