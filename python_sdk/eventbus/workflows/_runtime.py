"""The step runtime's decisions, with no I/O: the consumer asks these when a delivery is a step.

- ``read_step`` before the handler: the step's headers and its slip, parsed strictly against the
  contracts this process knows (a bad one parks the step: ``invalid_slip``);
- ``after_success``: the next steps' messages and the ``step_completed`` report (one confirmed
  batch); ``StepResultError``/``StepInputError`` when the result does not fit the next step;
- ``after_park``: the ``workflow.failed`` report and the ``on_error`` steps, published in the same
  confirmed batch as the park copy.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .._contract import known_contract
from .._outgoing import OutgoingMessage, build_outgoing
from .._parking import ParkReason
from ._forward import STEP_RESULT_ERRORS, advance_result, completed_report, step_messages
from ._reports import FAILED, WorkflowFailed
from ._slip import SLIP_HEADER, STEP_HEADER, WORKFLOW_HEADER, Slip, SlipError, advance, parse_slip, report_id

__all__ = ["INVALID_SLIP", "StepRun", "after_park", "after_success", "read_step"]

log = logging.getLogger("eventbus")

INVALID_SLIP = "invalid_slip"


@dataclass(frozen=True, slots=True)
class StepRun:
    """A step's delivery: its workflow, step id and slip (None with ``problem`` when unreadable)."""

    workflow_id: str
    step: str
    slip: Slip | None
    problem: ParkReason | None
    started_at: datetime


def _text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return value if isinstance(value, str) else ""


def read_step(headers: Mapping[str, Any]) -> StepRun:
    """The step's headers; ``problem`` says why it must be parked as ``invalid_slip``."""
    now = datetime.now(UTC)
    workflow_id, step = _text(headers.get(WORKFLOW_HEADER)), _text(headers.get(STEP_HEADER))
    missing = [h for h in (WORKFLOW_HEADER, STEP_HEADER, SLIP_HEADER) if h not in headers or
               (h != SLIP_HEADER and not _text(headers.get(h)))]
    if missing:
        reason = ParkReason(INVALID_SLIP, f"a workflow step without {', '.join(missing)}", "SlipError")
        return StepRun(workflow_id or "unknown", step or "unknown", None, reason, now)
    try:
        slip = parse_slip(headers[SLIP_HEADER], lambda t: known_contract(t) is not None)
    except SlipError as exc:
        return StepRun(workflow_id, step, None, ParkReason(INVALID_SLIP, str(exc), "SlipError"), now)
    return StepRun(workflow_id, step, slip, None, now)


def after_success(run: StepRun, result: Any, *, event_type: str, attempt: int, source: str) -> list[OutgoingMessage]:
    """The next steps and the ``step_completed`` report; raises ``STEP_RESULT_ERRORS`` (park at once)."""
    assert run.slip is not None
    messages: list[OutgoingMessage] = []
    join = None
    if run.slip.next:  # at the end of its branch a step's result moves nothing on, whatever it is
        actions = advance(run.slip.next, advance_result(result), run.slip.on_error)
        messages, join = step_messages(actions, workflow_id=run.workflow_id, contracts=known_contract, source=source)
    report = completed_report(workflow_id=run.workflow_id, step=run.step, event_type=event_type, attempt=attempt,
                              started_at=run.started_at, result=result, join=join, source=source)
    return [*messages, report]


def after_park(run: StepRun, reason: ParkReason, *, event_type: str, message_id: str, attempt: int, queue: str,
               source: str) -> list[OutgoingMessage]:
    """The ``workflow.failed`` report and, when the slip was read, the ``on_error`` steps."""
    failed = WorkflowFailed(workflow_id=run.workflow_id, step=run.step, type=event_type or "unknown",
                            message_id=message_id or "unknown", attempt=max(1, attempt), reason=reason.code,
                            error_type=reason.error_type or "unknown", error=reason.error, queue=queue,
                            failed_at=datetime.now(UTC))
    report = build_outgoing(failed, source=source, contract=FAILED,
                            event_id=report_id(run.workflow_id, run.step, "failed"))
    if run.slip is None or not run.slip.on_error:
        return [report]
    failure = failed.model_dump(mode="json")
    try:
        messages, _ = step_messages(advance(run.slip.on_error, failure, ()), workflow_id=run.workflow_id,
                                    contracts=known_contract, source=source)
    except STEP_RESULT_ERRORS as exc:
        log.error("workflow %s: the on_error step(s) cannot be published: %s", run.workflow_id, exc)
        return [report]
    return [report, *messages]
