"""context-handling: the reference consumer of the event bus.

It turns ``chat.conversation.ended.v1`` events into relationship scores, friendship statuses and
friend candidates (DESIGN section 6), with exactly-once effects on an at-least-once bus, and
publishes ``context.friendship.status_changed.v1`` and ``context.candidates.updated.v1``.

    scoring, candidates      the domain core: formulas only, no I/O
    derived                  derived events and their deterministic ids
    storage, processor       tables and the one-transaction write path
    batcher, cache, jobs     batching, the candidate cache, the periodic jobs
    decay, decay_chord       the decay recompute by shards, and as a chord of them (a canvas)
    observability, app       metrics and health, the assembled service
    commands, cli            the console script's commands, and its entry point

It uses only the public API of the ``eventbus`` SDK and the generated ``eventbus_contracts``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import ContextHandlingService, create_service
    from .settings import ServiceSettings

__all__ = ["ContextHandlingService", "ServiceSettings", "create_service"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so that the console script can say which extra is missing.
    if name in ("ContextHandlingService", "create_service"):
        from . import app

        return getattr(app, name)
    if name == "ServiceSettings":
        from .settings import ServiceSettings

        return ServiceSettings
    raise AttributeError(f"module 'context_handling' has no attribute {name!r}")
