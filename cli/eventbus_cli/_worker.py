"""``eventbus worker MODULE[:ATTR]``: run a service's handlers until SIGTERM or SIGINT.

Exit codes: 0 after a clean stop (SIGTERM/SIGINT, in-flight handlers finished or requeued),
1 when the bus cannot be loaded or cannot consume (import error, topology mismatch, a fault
it could not recover from), 3 when no broker answers at start, 2 for bad options.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import threading
import time

import click

from eventbus import ConnectionFailedError, EventBus, EventBusError, SyncEventBus

from ._errors import EXIT_BROKER_DOWN, EXIT_ERROR, broker_hint, fail
from ._loader import AnyBus, LoadError, load_bus

__all__ = ["worker"]

log = logging.getLogger("eventbus.worker")
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # The clients log every failed connect or reconnect; our own lines say it once, better.
    for noisy in ("aiormq.connection", "pika"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)


def _describe(bus: AnyBus) -> str:
    queues = sorted({s.queue for s in bus.subscriptions})
    return (f"service {bus.settings.service}: {len(queues)} queue(s) {', '.join(queues) or '(none)'}, "
            f"concurrency {bus.settings.prefetch}, pid {os.getpid()}")


async def _serve_async(bus: EventBus, grace: float | None) -> None:
    loop = asyncio.get_running_loop()
    stops: list[asyncio.Task[None]] = []

    def request_stop(signum: int) -> None:
        name = signal.Signals(signum).name
        if stops:
            log.warning("%s again: cancelling running handlers, their deliveries go back to the queue", name)
        else:
            log.info("%s: stopping; in-flight handlers get %ss", name,
                     bus.settings.shutdown_grace if grace is None else grace)
        stops.append(loop.create_task(bus.stop(grace)))

    for signum in _SIGNALS:
        loop.add_signal_handler(signum, request_stop, signum)
    try:
        await bus.start()
        log.info("worker started: %s", _describe(bus))
        await bus.run()
        for task in stops:
            await task
    finally:
        await bus.close()


def _serve_sync(bus: SyncEventBus) -> None:
    def request_stop(signum: int, _frame: object) -> None:
        log.info("%s: stopping; in-flight handlers get %ss", signal.Signals(signum).name, bus.settings.shutdown_grace)
        bus.stop()

    if threading.current_thread() is threading.main_thread():
        for signum in _SIGNALS:
            signal.signal(signum, request_stop)
    try:
        bus.start()
        log.info("worker started: %s", _describe(bus))
        bus.run()
    finally:
        bus.close()


async def _main(target: str, concurrency: int | None, grace: float | None) -> AnyBus:
    bus = await load_bus(target)
    changes: dict[str, object] = {}
    if concurrency is not None:
        changes["prefetch"] = concurrency
    if grace is not None:
        changes["shutdown_grace"] = grace
    if changes:
        bus.settings = bus.settings.with_(**changes)
    if isinstance(bus, EventBus):
        await _serve_async(bus, grace)
    return bus


@click.command()
@click.argument("target", metavar="MODULE[:ATTR]")
@click.option("--concurrency", type=click.IntRange(1, 65535), default=None,
              help="Deliveries handled at once (the prefetch). Default: the bus settings (100).")
@click.option("--grace", type=click.FloatRange(min=0), default=None,
              help="Seconds in-flight handlers get after SIGTERM/SIGINT before their deliveries are requeued. "
                   "Default: the bus settings (30).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True)
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def worker(target: str, concurrency: int | None, grace: float | None, log_level: str, log_format: str) -> None:
    """Run the handlers of the bus at MODULE[:ATTR] until SIGTERM or SIGINT.

    ATTR (default: bus) is an EventBus or SyncEventBus, or a function returning one, e.g.
    'eventbus worker service.app:bus' for a module that does

    \b
        bus = EventBus.from_env(service="context-handling")
        @bus.subscribe(ConversationEndedV1)
        async def on_conversation_ended(event, ctx): ...

    On SIGTERM or SIGINT the worker stops taking deliveries, lets in-flight handlers finish
    within the grace period, puts the rest back on the queue and exits 0; a second signal
    cuts the grace period short. Exit 1: the bus cannot be loaded or cannot consume (import
    error, topology mismatch); 3: no broker answers at start.
    """
    _configure_logging(log_level, log_format)
    try:
        bus = asyncio.run(_main(target, concurrency, grace))
        if isinstance(bus, SyncEventBus):
            _serve_sync(bus)
    except LoadError as exc:
        fail(str(exc))
    except ConnectionFailedError as exc:
        fail(f"{exc} — {broker_hint(exc)}", EXIT_BROKER_DOWN)
    except EventBusError as exc:
        fail(str(exc), EXIT_ERROR)
    except (OSError, ValueError) as exc:
        fail(f"{type(exc).__name__}: {exc}")
    log.info("worker stopped cleanly")
