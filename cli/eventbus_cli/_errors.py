"""Errors become one line on stderr and an exit code, never a traceback."""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import click

from eventbus import ConnectionFailedError, EventBusError, UnroutableError

__all__ = ["EXIT_BROKER_DOWN", "EXIT_ERROR", "EXIT_FINDINGS", "broker_hint", "one_line_errors"]

EXIT_ERROR = 1
EXIT_BROKER_DOWN = 3
EXIT_FINDINGS = 1

F = TypeVar("F", bound=Callable[..., Any])

BROKER_HINT = (
    "is RabbitMQ running? start it with 'rabbitmq-server -detached' "
    "(or point EVENTBUS_URL at a broker)"
)


UNROUTABLE_HINT = (
    "nobody has subscribed to it yet: start the consumer first (its queue keeps events from then on), "
    "or declare its queue now with 'eventbus topology apply --service NAME'"
)
_REFUSED = re.compile(r"(?P<url>\S+) \((?P<cause>login refused|access to the virtual host refused)")


def broker_hint(exc: ConnectionFailedError) -> str:
    """What to do about a failed connection: the password, the vhost, or starting RabbitMQ."""
    refused = _REFUSED.search(str(exc))
    if refused is None:
        return BROKER_HINT
    url = urlsplit(refused["url"])
    user, vhost = unquote(url.username or "guest"), unquote(url.path[1:]) if len(url.path) > 1 else "/"
    if refused["cause"] == "login refused":
        return (f"RabbitMQ is running and refused user {user!r} (vhost {vhost!r}): check the password "
                "in the URL (EVENTBUS_URL or --url) and the user name ('rabbitmqctl list_users')")
    return (f"user {user!r} may not use vhost {vhost!r}: check that the vhost exists and the user has "
            f"permissions on it ('rabbitmqctl list_permissions -p {vhost}')")


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
            fail(f"{exc} — {broker_hint(exc)}", EXIT_BROKER_DOWN)
        except UnroutableError as exc:
            fail(f"{exc}: {UNROUTABLE_HINT}")
        except EventBusError as exc:
            fail(str(exc))
        except (OSError, ValueError) as exc:
            fail(f"{type(exc).__name__}: {exc}")

    return wrapper  # type: ignore[return-value]
