"""Workflows: chain, group and chord of typed steps, moved on by a routing slip (docs/workflows.md).

The engine that joins chords and tracks workflows (Redis) is ``eventbus.workflow_engine``.
"""

from .._revocations import MemoryRevocations, RedisRevocations, Revocations, RevocationStoreError
from ._canvas import Canvas, Chain, Chord, Group, Signature, chain, chord, group, step
from ._compile import compile_canvas, plan_steps, start_messages
from ._forward import STEP_RESULT_ERRORS, StepResultError
from ._reports import ENGINE_QUEUE, REPORTS_EXCHANGE, WorkflowFailed
from ._slip import SLIP_HEADER, STEP_HEADER, WORKFLOW_HEADER, Slip, SlipError, StepInputError, advance, parse_slip

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
    "MemoryRevocations",
    "RedisRevocations",
    "RevocationStoreError",
    "Revocations",
    "Signature",
    "Slip",
    "SlipError",
    "StepInputError",
    "StepResultError",
    "WorkflowFailed",
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
