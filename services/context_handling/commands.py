"""The ``context-handling`` commands: run the service, run a job now, relay only, or watch the demo.

Errors are one line on stderr and an exit code: 3 when no broker answers (with the command that
starts one), 4 when the database does not, 1 for anything else the user can fix.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from eventbus import ConnectionFailedError, EventBusError
from eventbus_contracts import REGISTRY

from .app import create_service
from .settings import ServiceSettings

__all__ = ["cli"]

EXIT_ERROR = 1
EXIT_BROKER_DOWN = 3
EXIT_DATABASE_DOWN = 4
BROKER_HINT = "is RabbitMQ running? start it with 'rabbitmq-server -detached' (or point EVENTBUS_URL at a broker)"

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("context_handling")


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def one_line_errors(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConnectionFailedError as exc:
            _fail(f"{exc} — {BROKER_HINT}", EXIT_BROKER_DOWN)
        except SQLAlchemyError as exc:
            first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            _fail(f"database unavailable: {type(exc).__name__}: {first}", EXIT_DATABASE_DOWN)
        except (EventBusError, KeyError, OSError, ValueError, TimeoutError) as exc:
            text = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            _fail(f"{text}", EXIT_ERROR)

    return wrapper  # type: ignore[return-value]


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log what the service does.")
def cli(verbose: bool) -> None:
    """context-handling: relationship scores, friendship statuses and friend candidates from chat events.

    Configured by environment: EVENTBUS_URL, DATABASE_URL (SQLite file by default; postgresql://…),
    REDIS_URL (candidate cache; in-process without it), CONTEXT_TIMEZONE, CONTEXT_HTTP,
    CONTEXT_SCHEDULER, CONTEXT_FALLBACK_CRON, CONTEXT_DECAY_CRON (docs/context-handling.md).
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for name in ("pika", "aiormq", "aio_pika"):
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.CRITICAL)


async def _serve(settings: ServiceSettings) -> None:
    service = create_service(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await service.start()
        log.info("ready")
        await stop.wait()
        log.info("stopping")
    finally:
        await service.stop()


@cli.command()
@one_line_errors
def run() -> None:
    """Consume conversations until SIGTERM or Ctrl-C (then finish in-flight work and stop)."""
    logging.getLogger("context_handling").setLevel(logging.INFO)
    asyncio.run(_serve(ServiceSettings.from_env()))


async def _relay(settings: ServiceSettings) -> None:
    # in this process: the decay recompute as one walk, not a chord (no workers need to be running)
    service = create_service(settings.with_(scheduler=False, http=None, decay_shards=1))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await service.bus.declare_exchanges(REGISTRY)  # fail fast when no broker answers
    log.info("relay ready")
    await service.run_relay(stop)


@cli.command()
@one_line_errors
def relay() -> None:
    """Only publish outbox rows (for consumers started with CONTEXT_RELAY=off), until SIGTERM."""
    logging.getLogger("context_handling").setLevel(logging.INFO)
    asyncio.run(_relay(ServiceSettings.from_env()))


async def _run_job(settings: ServiceSettings, name: str, at: datetime | None) -> Any:
    # in this process: the decay recompute as one walk, not a chord (no workers need to be running)
    service = create_service(settings.with_(scheduler=False, http=None, decay_shards=1))
    try:
        await service.bus.declare_exchanges(REGISTRY)  # a job publishes: fail fast when no broker answers
        await service.prepare()
        report = await service.run_job(name, at=at)
        pending = await service.relay.drain(timeout=60)
        return report, pending
    finally:
        await service.stop(drain_outbox=0)


@cli.command()
@click.argument("name", type=click.Choice(["decay-recompute", "fallback"]))
@click.option(
    "--at",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]),
    help="decay-recompute: the midnight to recompute as of (default: the latest scheduled one). UTC unless given.",
)
@one_line_errors
def job(name: str, at: datetime | None) -> None:
    """Run job NAME now, in this process, and publish what it produced."""
    settings = ServiceSettings.from_env()
    if at is not None and at.tzinfo is None:
        from datetime import UTC

        at = at.replace(tzinfo=UTC)
    report, pending = asyncio.run(_run_job(settings, name, at))
    click.echo(f"{name}: {report}")
    if pending:
        _fail(f"{pending} derived event(s) still unpublished; the running service's relay will send them", EXIT_ERROR)


@cli.command()
@click.option("--users", default=300, show_default=True, help="Simulated users.")
@click.option("--conversations", default=3000, show_default=True, help="Simulated conversations.")
@click.option("--seed", default=7, show_default=True, help="Seed of the simulation.")
@one_line_errors
def demo(users: int, conversations: int, seed: int) -> None:
    """Simulate a chat back end and watch the service score it (local RabbitMQ, temporary SQLite)."""
    from .demo import run_demo

    settings = ServiceSettings.from_env()
    asyncio.run(run_demo(Console(), urls=settings.bus.urls, users=users, conversations=conversations, seed=seed))
