"""For the SDK's worker: ``eventbus worker context_handling.worker:create_bus``.

(Needs the worker command and ``EventBus.on_startup``/``on_shutdown`` of the SDK's reliability work.)

The worker runs the bus (consuming, SIGTERM, draining); the service's other parts (schema, batch
writer, outbox relay, scheduler, health endpoint) start and stop with it through the bus's
startup and shutdown hooks. ``context-handling run`` does the same without the worker.
"""

from __future__ import annotations

from eventbus import EventBus

from .app import create_service

__all__ = ["create_bus"]


def create_bus() -> EventBus:
    return create_service().worker_bus()
