"""One readable sentence for "the broker did not answer", whichever client failed to connect.

Clients (the lean one, aio-pika behind its transport) wrap the root cause in layers; users need
the URL (without password) and the cause in a few words, not the layers.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._exceptions import ConnectionFailedError
from ._settings import redact_url

__all__ = ["connection_failed"]

_CAUSES = (
    ("ACCESS_REFUSED", "login refused: check the user name and password"),
    ("NOT_ALLOWED", "access to the virtual host refused"),
    ("refused", "connection refused"),
    ("Connect call failed", "connection refused"),
    ("timed out", "timed out"),
    ("Timeout", "timed out"),
    ("Name or service not known", "unknown host"),
    ("nodename nor servname", "unknown host"),
)


def _cause(exc: BaseException) -> str:
    text = f"{type(exc).__name__} {exc!r} {exc}"
    for needle, cause in _CAUSES:
        if needle in text:
            return cause
    return f"{type(exc).__name__}: {exc}"


def connection_failed(attempts: Sequence[tuple[str, BaseException]]) -> ConnectionFailedError:
    """The error to raise after every URL in ``attempts`` failed."""
    shown = "; ".join(f"{redact_url(url)} ({_cause(exc)})" for url, exc in attempts)
    return ConnectionFailedError(f"no RabbitMQ broker answered at {shown}")
