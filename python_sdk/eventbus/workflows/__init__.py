"""Workflows: chain, group and chord of typed steps, moved on by a routing slip (docs/workflows.md).

The engine (``WorkflowEngine``, Redis) joins chords exactly once and tracks every workflow;
``Workflows`` reads what it tracked and retries failed steps.
"""

from ._canvas import Canvas, Chain, Chord, Group, Signature, chain, chord, group, step
from ._compile import compile_canvas, plan_steps, start_messages
from ._engine import WorkflowEngine
from ._forward import STEP_RESULT_ERRORS, StepResultError
from ._reports import ENGINE_QUEUE, REPORTS_EXCHANGE, WorkflowFailed
from ._slip import SLIP_HEADER, STEP_HEADER, WORKFLOW_HEADER, Slip, SlipError, StepInputError, advance, parse_slip
from ._tracking import JoinView, StepView, Workflows, WorkflowSummary, WorkflowView

__all__ = [
    "ENGINE_QUEUE",
    "REPORTS_EXCHANGE",
    "SLIP_HEADER",
    "STEP_HEADER",
    "STEP_RESULT_ERRORS",
    "WORKFLOW_HEADER",
    "Canvas",
    "Chain",
    "Chord",
    "Group",
    "JoinView",
    "Signature",
    "Slip",
    "SlipError",
    "StepInputError",
    "StepResultError",
    "StepView",
    "WorkflowEngine",
    "WorkflowFailed",
    "WorkflowSummary",
    "WorkflowView",
    "Workflows",
    "advance",
    "chain",
    "chord",
    "compile_canvas",
    "group",
    "parse_slip",
    "plan_steps",
    "start_messages",
    "step",
]
