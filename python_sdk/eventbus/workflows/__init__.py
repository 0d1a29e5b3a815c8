"""Workflows: chain, group and chord of typed steps, moved on by a routing slip (docs/workflows.md).

The engine (``WorkflowEngine``, Redis) joins chords exactly once and tracks every workflow;
``Workflows`` reads what it tracked and retries failed steps.
"""

from ._engine import WorkflowEngine
from ._slip import SLIP_HEADER, STEP_HEADER, WORKFLOW_HEADER, Slip, SlipError, advance, parse_slip
from ._tracking import JoinView, StepView, Workflows, WorkflowSummary, WorkflowView

__all__ = [
    "SLIP_HEADER",
    "STEP_HEADER",
    "WORKFLOW_HEADER",
    "JoinView",
    "Slip",
    "SlipError",
    "StepView",
    "WorkflowEngine",
    "WorkflowSummary",
    "WorkflowView",
    "Workflows",
    "advance",
    "parse_slip",
]
