"""From ``advance``'s actions to the messages that move a workflow on, with no I/O.

Shared by the runtime that finished a step (``Publish`` actions, and the ``Join`` inside its
``step_completed`` report) and by the engine that completes a join (the callback). Every body is
validated against its step's contract before any message exists, so a result that does not fit the
next step fails the step that produced it (``StepResultError`` → park ``workflow_result_invalid``)
and never the next one half-way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel

from .._contract import EventContract
from .._outgoing import OutgoingMessage, build_outgoing, wrap_encoded
from ._reports import STEP_COMPLETED, JoinReport, StepCompleted
from ._slip import (
    SLIP_HEADER,
    STEP_HEADER,
    WORKFLOW_HEADER,
    Join,
    Publish,
    StepInputError,
    encode_slip,
    frame_to_json,
    report_id,
    step_event_id,
)

__all__ = ["STEP_RESULT_ERRORS", "Contracts", "StepResultError", "advance_result", "completed_report", "step_messages"]

Contracts = Callable[[str], "EventContract[Any] | None"]
"""The contract of an event type known here, or None."""


class StepResultError(ValueError):
    """A step's result that cannot become its next step's body (park reason ``workflow_result_invalid``)."""

    reason = "workflow_result_invalid"


def step_messages(actions: Sequence[Publish | Join], *, workflow_id: str, contracts: Contracts,
                  source: str) -> tuple[list[OutgoingMessage], Join | None]:
    """The messages of ``actions``' ``Publish``es (validated, with step ids and slips), and its ``Join``."""
    messages: list[OutgoingMessage] = []
    join: Join | None = None
    for action in actions:
        if isinstance(action, Join):
            join = action
            continue
        frame = action.frame
        contract = contracts(frame.type)
        if contract is None:
            raise StepResultError(f"step {frame.step}: contract {frame.type} is not known here")
        problems = contract.violations(action.body)
        if problems:
            detail = "; ".join(f"{p.instance_path}: {p.message}" for p in problems[:5])
            raise StepResultError(f"the input of step {frame.step} breaks {frame.type}: {detail}")
        headers = {WORKFLOW_HEADER: workflow_id, STEP_HEADER: frame.step, SLIP_HEADER: encode_slip(action.slip)}
        message = wrap_encoded(contract, orjson.dumps(action.body), source=source,
                               event_id=step_event_id(workflow_id, frame.step), headers=headers)
        messages.append(dataclasses.replace(message, exchange=frame.exchange, routing_key=frame.routing_key))
    return messages, join


def advance_result(result: Any) -> Any:
    """A handler's return value as the JSON input of ``advance``: a model's data, or None."""
    if result is None:
        return None
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json", by_alias=True, exclude_unset=True)
    raise StepResultError(f"a workflow step returned a {type(result).__name__}; a step returns a model of a "
                          "contract or nothing")


def completed_report(*, workflow_id: str, step: str, event_type: str, attempt: int, started_at: datetime,
                     result: Any, join: Join | None, source: str,
                     finished_at: datetime | None = None) -> OutgoingMessage:
    """The ``step_completed`` report of a step (with its join, when its result belongs to one)."""
    result_type = None
    if isinstance(result, BaseModel):
        contract = getattr(type(result), "__eventbus_contract__", None)
        result_type = contract.type if isinstance(contract, EventContract) else None
    join_report = None
    if join is not None:
        join_report = JoinReport(group=join.frame.join, index=join.frame.index, size=join.frame.size,
                                 result=join.result, next=[frame_to_json(f) for f in join.next],
                                 on_error=[frame_to_json(f) for f in join.on_error])
    report = StepCompleted(workflow_id=workflow_id, step=step, type=event_type, attempt=attempt,
                           started_at=started_at, finished_at=finished_at or datetime.now(UTC),
                           result_type=result_type, join=join_report)
    return build_outgoing(report, source=source, contract=STEP_COMPLETED,
                          event_id=report_id(workflow_id, step, "completed"))


# StepInputError (a merge of a non-object) is the same failure as a body that breaks its contract.
STEP_RESULT_ERRORS = (StepResultError, StepInputError)
