"""The workflow engine: exactly-once chord joins and tracking of workflows, in Redis (docs/workflows.md).

``WorkflowEngine(bus, redis_url)`` runs on a worker's bus and consumes the workflow reports;
``Workflows(redis_url, bus)`` lists, shows and retries what it tracked. The canvas and the routing
slip it works on are ``eventbus.workflows`` (no I/O); this room is the part that keeps state.
``MemoryWorkflowStore`` (``eventbus.testing.memory_workflows``) is its store for tests.
"""

from ._engine import WorkflowEngine
from ._memory_store import MemoryWorkflowStore
from ._store import DEFAULT_TTL, JoinOutcome, RedisStore, WorkflowStore
from ._tracking import JoinView, StepView, Workflows, WorkflowSummary, WorkflowView

__all__ = [
    "DEFAULT_TTL",
    "JoinOutcome",
    "JoinView",
    "MemoryWorkflowStore",
    "RedisStore",
    "StepView",
    "WorkflowEngine",
    "WorkflowStore",
    "WorkflowSummary",
    "WorkflowView",
    "Workflows",
]
