"""Broker clients behind one seam (``_protocol.Transport``), selectable per bus.

    lean      the SDK's own AMQP 0-9-1 client (default; see docs/performance.md)
    aio-pika  aio-pika, for anyone who meets a protocol corner of the lean client
              (``pip install "eventbus[aio-pika]"``)
    memory    the in-memory broker of ``eventbus.testing`` (pass ``MemoryBroker().transport()``)

Choose with ``BusSettings(transport="aio-pika")``, ``EVENTBUS_TRANSPORT=aio-pika`` (through
``BusSettings.from_env``) or ``EventBus(settings, transport=...)``, which also takes any object
implementing ``Transport``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._exceptions import ConfigurationError as _ConfigurationError
from ._protocol import (
    DIRECT_REPLY_TO,
    DirectReplies,
    Incoming,
    Lock,
    Locking,
    Outgoing,
    Properties,
    Session,
    Topology,
    Transport,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._settings import BusSettings

__all__ = [
    "DIRECT_REPLY_TO",
    "DirectReplies",
    "Incoming",
    "Lock",
    "Locking",
    "Outgoing",
    "Properties",
    "Session",
    "TRANSPORTS",
    "Topology",
    "Transport",
    "open_transport",
]

TRANSPORTS = ("lean", "aio-pika")

_substitute: Callable[[], Transport] | None = None
"""Set by ``eventbus.testing.in_memory``: every bus made meanwhile without an explicit transport
object gets this one instead (how a test runs a whole service on the memory broker)."""


def _substitute_with(factory: Callable[[], Transport] | None) -> Callable[[], Transport] | None:
    global _substitute
    previous, _substitute = _substitute, factory
    return previous


def _substituted() -> Transport | None:
    """The transport ``eventbus.testing.in_memory`` puts in place now, or None (no client opened)."""
    return _substitute() if _substitute is not None else None


def open_transport(choice: Transport | str | None, settings: BusSettings) -> Transport:
    """The transport ``choice`` names (default: ``settings.transport``), or ``choice`` itself."""
    if choice is not None and not isinstance(choice, str):
        return choice
    if _substitute is not None:
        return _substitute()
    if choice is None:
        choice = getattr(settings, "transport", "lean")
    if choice == "lean":
        from ._lean import LeanTransport

        return LeanTransport(settings)
    if choice == "aio-pika":
        from ._aio_pika import AioPikaTransport

        return AioPikaTransport(settings)
    raise _ConfigurationError(
        f"unknown transport {choice!r}: choose one of {', '.join(TRANSPORTS)}, or pass a Transport "
        "(eventbus.testing.MemoryBroker().transport() for tests)"
    )
