"""Errors become one line on stderr and an exit code, never a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from eventbus import ConnectionFailedError, EventBusError

__all__ = ["EXIT_BROKER_DOWN", "EXIT_ERROR", "EXIT_FINDINGS", "one_line_errors"]

EXIT_ERROR = 1
EXIT_BROKER_DOWN = 3
EXIT_FINDINGS = 1

F = TypeVar("F", bound=Callable[..., Any])

BROKER_HINT = (
    "is RabbitMQ running? start it with 'rabbitmq-server -detached' "
    "(or point EVENTBUS_URL at a broker)"
)


def fail(message: str, code: int = EXIT_ERROR) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def one_line_errors(func: F) -> F:
    """Decorate a command so SDK errors print as ``error: …`` with a clear exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConnectionFailedError as exc:
            fail(f"{exc} — {BROKER_HINT}", EXIT_BROKER_DOWN)
        except EventBusError as exc:
            fail(str(exc))
        except (OSError, ValueError) as exc:
            fail(f"{type(exc).__name__}: {exc}")

    return wrapper  # type: ignore[return-value]
