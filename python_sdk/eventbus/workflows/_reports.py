"""The workflow reports on the wire (docs/wire-format.md, "Reports and the engine"), as contracts.

Reports are ordinary CloudEvents on the topic exchange ``eventbus.workflow`` with their type as
routing key: ``started`` (from the starter), ``step_completed`` (from the runtime that ran a
step; it carries the chord join when the step's result belongs to one), ``failed`` (from the
runtime that parked a step; also the public ``workflow.failed`` event) and ``cancelled``. Their
ids are deterministic (``_slip.report_id``), so a redelivered report is the same report.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .._contract import EventContract

__all__ = [
    "ENGINE_QUEUE",
    "REPORTS_EXCHANGE",
    "JoinReport",
    "StepCompleted",
    "WorkflowCancelled",
    "WorkflowFailed",
    "WorkflowStarted",
]

REPORTS_EXCHANGE = "eventbus.workflow"
ENGINE_QUEUE = "eventbus.workflow.engine"


class _Report(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorkflowStarted(_Report):
    """A workflow was started: its whole plan, for tracking (``eventbus workflow show``)."""

    workflow_id: str
    plan: dict[str, Any] = Field(description="The canvas tree (docs/workflows.md, The plan).")
    on_error: list[dict[str, Any]] = Field(default_factory=list, description="The on_error frames.")
    started_at: datetime


class JoinReport(_Report):
    """A step's result that is member ``index`` of the ``size`` results of group ``group``."""

    group: str
    index: int = Field(ge=0)
    size: int = Field(ge=1)
    result: Any = None
    next: list[dict[str, Any]] = Field(default_factory=list, description="The frames after the join.")
    on_error: list[dict[str, Any]] = Field(default_factory=list)


class StepCompleted(_Report):
    """A step's handler succeeded and its next steps were published."""

    workflow_id: str
    step: str
    type: str
    attempt: int = Field(ge=1)
    started_at: datetime
    finished_at: datetime
    result_type: str | None = None
    join: JoinReport | None = None


class WorkflowFailed(_Report):
    """A step of the workflow was parked: the workflow failed (the public ``workflow.failed`` event)."""

    workflow_id: str
    step: str
    type: str
    message_id: str
    attempt: int = Field(ge=1)
    reason: str = Field(description="The park reason (handler_error, invalid_slip, …).")
    error_type: str
    error: str
    queue: str = Field(description="The DLQ the step's message was parked in.")
    failed_at: datetime


class WorkflowCancelled(_Report):
    """``cancel(workflow_id)`` was called: pending steps are dropped at dispatch."""

    workflow_id: str
    cancelled_at: datetime


def _contract(model: type[BaseModel], name: str) -> EventContract[Any]:
    event_type = f"eventbus.workflow.{name}.v1"
    schema = model.model_json_schema()
    schema["$id"] = f"https://eventbus.dev/schemas/workflow/{name}.v1.schema.json"
    return EventContract(type=event_type, exchange=REPORTS_EXCHANGE, model=model, schema=schema,
                         routing_key=event_type, owner="eventbus")


STARTED = _contract(WorkflowStarted, "started")
STEP_COMPLETED = _contract(StepCompleted, "step_completed")
FAILED = _contract(WorkflowFailed, "failed")
CANCELLED = _contract(WorkflowCancelled, "cancelled")
REPORT_CONTRACTS = (STARTED, STEP_COMPLETED, FAILED, CANCELLED)
