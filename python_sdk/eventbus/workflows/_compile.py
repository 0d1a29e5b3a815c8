"""A canvas → its frames (the routing slip), its plan and its first messages, checked, with no I/O.

Step and group ids are paths: the top level is a chain (``0``, ``1``, …), a group at ``1`` has
members ``1.0``, ``1.1`` …, a chord at ``2`` has members ``2.0`` … and its callback ``2.cb``, the
``on_error`` canvas is ``err`` (``err.0`` …). A chord is a group frame followed by the callback's
frames, exactly like a chain whose group is followed by a step.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .._exceptions import ConfigurationError
from .._outgoing import OutgoingMessage, build_outgoing
from ._canvas import Canvas, Chain, Chord, Group, Signature
from ._forward import Contracts, StepResultError, step_messages
from ._reports import FAILED, STARTED, WorkflowStarted
from ._slip import (
    MAX_SLIP_BYTES,
    Frame,
    GroupFrame,
    JoinFrame,
    Slip,
    StepFrame,
    advance,
    encode_slip,
    frame_to_json,
    workflow_report_id,
)
from ._typing import ListResult, Result, decide_input

__all__ = ["Compiled", "compile_canvas", "plan_steps", "start_messages"]


@dataclass(frozen=True, slots=True)
class Compiled:
    """A checked canvas: its frames, its plan (for the ``started`` report) and its result type."""

    frames: tuple[Frame, ...]
    plan: dict[str, Any]
    result: Result


def _path(parent: str, part: str | int) -> str:
    return f"{parent}.{part}" if parent else str(part)


def _compile(node: Canvas, previous: Result, first: bool, path: str) -> Compiled:
    if isinstance(node, Signature):
        decision = decide_input(node.contract, node.args, immutable=node.immutable, into=node.into,
                                previous=previous, first=first, where=path)
        if decision.input == "none":
            problems = node.contract.violations(dict(node.args))
            if problems:
                detail = "; ".join(f"{p.instance_path}: {p.message}" for p in problems[:3])
                raise ConfigurationError(f"step {path} ({node.type}): its payload breaks the contract: {detail}")
        frame = StepFrame(path, node.contract.type, node.contract.exchange, node.contract.routing_key,
                          dict(node.args), decision.input, decision.field)
        plan: dict[str, Any] = {"kind": "step", "step": path, "type": node.type,
                "result_type": node.returns.type if node.returns is not None else None}
        return Compiled((frame,), plan, node.returns)
    if isinstance(node, Chain):
        frames: list[Frame] = []
        nodes = []
        for i, item in enumerate(node.steps):
            part = _compile(item, previous, first and i == 0, _path(path, i))
            frames.extend(part.frames)
            nodes.append(part.plan)
            previous = part.result
        return Compiled(tuple(frames), {"kind": "chain", "steps": nodes}, previous)
    if isinstance(node, Group):
        return _group(node, previous, first, path)
    header = _group(node.header, previous, first, path)
    callback = _compile(node.callback, header.result, False, _path(path, "cb"))
    node_plan = {"kind": "chord", "group": path, "members": header.plan["members"], "callback": callback.plan}
    return Compiled(header.frames + callback.frames, node_plan, callback.result)


def _group(node: Group, previous: Result, first: bool, path: str) -> Compiled:
    members = [_compile(m, previous, first, _path(path, i)) for i, m in enumerate(node.members)]
    frame = GroupFrame(path, tuple(m.frames for m in members))
    plan = {"kind": "group", "group": path, "members": [m.plan for m in members]}
    return Compiled((frame,), plan, ListResult(tuple(m.result for m in members)))


def _check_slips(frames: Sequence[Frame], on_error: Sequence[Frame]) -> None:
    """Every slip a step of this workflow will carry fits the wire's limit (65 536 bytes)."""
    seen: set[int] = set()

    def walk(rest: tuple[Frame, ...]) -> None:
        while rest:
            first, rest = rest[0], rest[1:]
            if isinstance(first, StepFrame):
                size = len(encode_slip(Slip(rest, tuple(on_error))).encode("utf-8"))
                if size > MAX_SLIP_BYTES:
                    raise ConfigurationError(
                        f"step {first.step} ({first.type}) would carry a routing slip of {size} bytes, more than "
                        f"{MAX_SLIP_BYTES}: start a large group at the top of a workflow (each member then "
                        "carries a small slip), or split the workflow")
            elif isinstance(first, GroupFrame):
                if id(rest) in seen:
                    return
                seen.add(id(rest))
                for index, member in enumerate(first.members):
                    walk((*member, JoinFrame(first.group, index, len(first.members)), *rest))
                return

    walk(tuple(frames))


def compile_canvas(canvas: Canvas, on_error: Canvas | None = None) -> tuple[Compiled, Compiled | None]:
    """Check and compile ``canvas`` (and its ``on_error`` canvas, which receives the failure report)."""
    if not isinstance(canvas, (Signature, Chain, Group, Chord)):
        raise ConfigurationError(f"bus.start needs a canvas (a step, chain, group or chord), got {canvas!r}")
    compiled = _compile(canvas if isinstance(canvas, Chain) else Chain((canvas,)), None, True, "")
    errors = None
    if on_error is not None:
        errors = _compile(on_error if isinstance(on_error, Chain) else Chain((on_error,)), FAILED, False, "err")
    _check_slips(compiled.frames, errors.frames if errors else ())
    if errors is not None:
        _check_slips(errors.frames, ())
    return compiled, errors


def plan_steps(plan: dict[str, Any]) -> list[tuple[str, str]]:
    """Every ``(step id, event type)`` of a plan, in plan order (members before a chord's callback)."""
    kind = plan.get("kind")
    if kind == "step":
        return [(plan["step"], plan["type"])]
    if kind == "chain":
        return [pair for node in plan["steps"] for pair in plan_steps(node)]
    out = [pair for node in plan["members"] for pair in plan_steps(node)]
    if kind == "chord":
        out += plan_steps(plan["callback"])
    return out


def start_messages(canvas: Canvas, *, on_error: Canvas | None, workflow_id: str | None, source: str,
                   contracts: Contracts) -> tuple[str, list[OutgoingMessage]]:
    """The workflow id and what ``start`` publishes in one confirmed batch: the ``started`` report,
    then the first steps."""
    compiled, errors = compile_canvas(canvas, on_error)
    workflow_id = workflow_id or str(uuid.uuid4())
    error_frames = errors.frames if errors else ()
    started = WorkflowStarted(workflow_id=workflow_id, plan=compiled.plan,
                              on_error=[frame_to_json(f) for f in error_frames], started_at=datetime.now(UTC))
    report = build_outgoing(started, source=source, contract=STARTED,
                            event_id=workflow_report_id(workflow_id, "started"))
    try:
        steps, _ = step_messages(advance(compiled.frames, None, error_frames), workflow_id=workflow_id,
                                 contracts=contracts, source=source)
    except StepResultError as exc:
        raise ConfigurationError(f"the first step(s) cannot be published: {exc}") from None
    return workflow_id, [report, *steps]

