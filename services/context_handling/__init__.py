"""context-handling: the reference consumer of the event bus.

It turns ``chat.conversation.ended.v1`` events into relationship scores, friendship statuses and
friend candidates (DESIGN section 6), with exactly-once effects on an at-least-once bus, and
publishes ``context.friendship.status_changed.v1`` and ``context.candidates.updated.v1``.

    scoring, candidates      the domain core: formulas only, no I/O
    derived                  derived events and their deterministic ids
    storage, processor       tables and the one-transaction write path
    batcher, cache, jobs     batching, the candidate cache, the periodic jobs
    observability, app, cli  metrics and health, the assembled service, the console script

It uses only the public API of the ``eventbus`` SDK and the generated ``eventbus_contracts``.
"""

from .app import ContextHandlingService, create_service
from .settings import ServiceSettings

__all__ = ["ContextHandlingService", "ServiceSettings", "create_service"]
