"""The routing slip on the wire, with no I/O (docs/wire-format.md, "Workflows: the routing slip").

A step's message carries what remains of its workflow as JSON in ``eventbus-workflow-slip``:
``{"v": 1, "next": [frame, ...], "on_error": [frame, ...]}``. ``advance`` turns a slip and a
step's result into what to publish next; the Node and Go runtimes implement the same function,
and ``tests/conformance/vectors/slip.json`` holds the vectors all three pass. ``parse_slip`` is
strict (every field checked, unknown ones refused) because a slip is input from the wire: a bad
one is parked before its step runs.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "MAX_DEPTH",
    "MAX_SLIP_BYTES",
    "NAMESPACE",
    "SLIP_HEADER",
    "STEP_HEADER",
    "WORKFLOW_HEADER",
    "Frame",
    "GroupFrame",
    "Join",
    "JoinFrame",
    "Publish",
    "Slip",
    "SlipError",
    "StepFrame",
    "StepInputError",
    "advance",
    "encode_slip",
    "frame_from_json",
    "frame_to_json",
    "parse_slip",
    "report_id",
    "step_body",
    "step_event_id",
    "workflow_report_id",
]

WORKFLOW_HEADER = "eventbus-workflow-id"
STEP_HEADER = "eventbus-workflow-step"
SLIP_HEADER = "eventbus-workflow-slip"
MAX_SLIP_BYTES = 65_536
MAX_DEPTH = 32
NAMESPACE = uuid.UUID("7b7075fe-be84-533c-9a0c-f28b35b2e486")  # uuid5(NAMESPACE_URL, "https://eventbus.dev/workflow")
_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
Input = Literal["none", "merge", "field"]


class SlipError(ValueError):
    """A slip that cannot be read (park reason ``invalid_slip``); the message says what is wrong."""


class StepInputError(ValueError):
    """A step's result that cannot become the next step's body (``"merge"`` of a non-object)."""


@dataclass(frozen=True, slots=True)
class StepFrame:
    """Publish one event of contract ``type`` to ``exchange``/``routing_key``, its body from ``args`` and the input."""

    step: str
    type: str
    exchange: str
    routing_key: str
    args: Mapping[str, Any] = field(default_factory=dict)
    input: Input = "none"
    field: str | None = None


@dataclass(frozen=True, slots=True)
class GroupFrame:
    """Start every member branch with the same input; their results join as group ``group``."""

    group: str
    members: tuple[tuple[Frame, ...], ...]


@dataclass(frozen=True, slots=True)
class JoinFrame:
    """This branch's result is result ``index`` of the ``size`` results of group ``join``."""

    join: str
    index: int
    size: int


Frame = StepFrame | GroupFrame | JoinFrame


@dataclass(frozen=True, slots=True)
class Slip:
    """What remains of a workflow after the step that carries it."""

    next: tuple[Frame, ...]
    on_error: tuple[Frame, ...] = ()


@dataclass(frozen=True, slots=True)
class Publish:
    """An action of ``advance``: publish ``body`` as step ``frame.step`` carrying ``slip``."""

    frame: StepFrame
    body: dict[str, Any]
    slip: Slip


@dataclass(frozen=True, slots=True)
class Join:
    """An action of ``advance``: report ``result`` as member ``frame.index`` of group ``frame.join``."""

    frame: JoinFrame
    result: Any
    next: tuple[Frame, ...]
    on_error: tuple[Frame, ...]


def step_event_id(workflow_id: str, step: str) -> str:
    """The CloudEvents id of a step's message: the same for every publish of that step."""
    return str(uuid.uuid5(NAMESPACE, f"{workflow_id}/{step}"))


def report_id(workflow_id: str, step: str, what: str) -> str:
    """The id of a step's report (``completed``, ``failed``)."""
    return str(uuid.uuid5(NAMESPACE, f"{workflow_id}/{step}/{what}"))


def workflow_report_id(workflow_id: str, what: str) -> str:
    """The id of a workflow's report (``started``, ``cancelled``)."""
    return str(uuid.uuid5(NAMESPACE, f"{workflow_id}/{what}"))


# -- JSON <-> frames -------------------------------------------------------------------------------


def frame_to_json(frame: Frame) -> dict[str, Any]:
    """The frame as the wire writes it (``field`` only with ``"input": "field"``)."""
    if isinstance(frame, StepFrame):
        out: dict[str, Any] = {"step": frame.step, "type": frame.type, "exchange": frame.exchange,
                               "routing_key": frame.routing_key, "args": dict(frame.args), "input": frame.input}
        if frame.input == "field":
            out["field"] = frame.field
        return out
    if isinstance(frame, GroupFrame):
        return {"group": frame.group, "members": [[frame_to_json(f) for f in m] for m in frame.members]}
    return {"join": frame.join, "index": frame.index, "size": frame.size}


def _frames_to_json(frames: Sequence[Frame]) -> list[dict[str, Any]]:
    return [frame_to_json(f) for f in frames]


def encode_slip(slip: Slip) -> str:
    """The slip header's value: compact JSON."""
    body: dict[str, Any] = {"v": 1, "next": _frames_to_json(slip.next)}
    if slip.on_error:
        body["on_error"] = _frames_to_json(slip.on_error)
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def _fields(value: Any, where: str, required: set[str], optional: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
    if not isinstance(value, dict):
        raise SlipError(f"{where}: a frame must be an object, got {type(value).__name__}")
    missing = required - value.keys()
    if missing:
        raise SlipError(f"{where}: missing {', '.join(sorted(missing))}")
    unknown = value.keys() - required - optional
    if unknown:
        raise SlipError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise SlipError(f"{where} must be a non-empty string")
    return value


def _ident(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise SlipError(f"{where} must match [A-Za-z0-9_.:-]{{1,64}}, got {value!r}")
    return value


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SlipError(f"{where} must be an integer, got {value!r}")
    return value


def frame_from_json(value: Any, where: str = "frame", depth: int = 0) -> Frame:
    """One frame from its JSON (``SlipError`` with the path of the first problem)."""
    if depth > MAX_DEPTH:
        raise SlipError(f"{where}: nested deeper than {MAX_DEPTH}")
    if isinstance(value, dict) and "step" in value:
        v = _fields(value, where, {"step", "type", "exchange", "routing_key", "args", "input"}, {"field"})
        mode = v["input"]
        if mode not in ("none", "merge", "field"):
            raise SlipError(f"{where}.input must be none, merge or field, got {mode!r}")
        if not isinstance(v["args"], dict):
            raise SlipError(f"{where}.args must be an object")
        if (mode == "field") != ("field" in v):
            raise SlipError(f"{where}: field is given exactly when input is 'field'")
        name = _string(v["field"], f"{where}.field") if mode == "field" else None
        if not isinstance(v["exchange"], str):
            raise SlipError(f"{where}.exchange must be a string")
        return StepFrame(_ident(v["step"], f"{where}.step"), _string(v["type"], f"{where}.type"), v["exchange"],
                         _string(v["routing_key"], f"{where}.routing_key"), v["args"], mode, name)
    if isinstance(value, dict) and "group" in value:
        v = _fields(value, where, {"group", "members"})
        members = v["members"]
        if not isinstance(members, list) or not members:
            raise SlipError(f"{where}.members must be a non-empty list")
        parsed = []
        for i, member in enumerate(members):
            if not isinstance(member, list) or not member:
                raise SlipError(f"{where}.members[{i}] must be a non-empty list of frames")
            parsed.append(tuple(frame_from_json(f, f"{where}.members[{i}][{j}]", depth + 1)
                                for j, f in enumerate(member)))
        return GroupFrame(_ident(v["group"], f"{where}.group"), tuple(parsed))
    if isinstance(value, dict) and "join" in value:
        v = _fields(value, where, {"join", "index", "size"})
        index, size = _int(v["index"], f"{where}.index"), _int(v["size"], f"{where}.size")
        if size < 1 or not 0 <= index < size:
            raise SlipError(f"{where}: index {index} is not in 0..size-1 (size {size})")
        return JoinFrame(_ident(v["join"], f"{where}.join"), index, size)
    raise SlipError(f"{where}: not a step, group or join frame")


def _frame_list(value: Any, where: str) -> tuple[Frame, ...]:
    if not isinstance(value, list):
        raise SlipError(f"{where} must be a list of frames")
    return tuple(frame_from_json(f, f"{where}[{i}]", 1) for i, f in enumerate(value))


def _step_types(frames: Sequence[Frame]) -> set[str]:
    types: set[str] = set()
    for frame in frames:
        if isinstance(frame, StepFrame):
            types.add(frame.type)
        elif isinstance(frame, GroupFrame):
            for member in frame.members:
                types |= _step_types(member)
    return types


def parse_slip(raw: Any, known: Callable[[str], bool] | None = None) -> Slip:
    """The slip in a header value (str or bytes); ``SlipError`` for anything the wire format refuses.

    ``known(type)`` says whether a contract is known here; a step frame of an unknown type is refused
    (its body could not be validated before it is published).
    """
    if isinstance(raw, (bytes, bytearray)):
        data = bytes(raw)
    elif isinstance(raw, str):
        data = raw.encode("utf-8", "surrogatepass")
    else:
        raise SlipError(f"the slip header must be a string, got {type(raw).__name__}")
    if len(data) > MAX_SLIP_BYTES:
        raise SlipError(f"the slip is {len(data)} bytes, more than {MAX_SLIP_BYTES}")
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SlipError(f"the slip is not UTF-8 JSON: {exc}") from None
    v = _fields(value, "slip", {"v", "next"}, {"on_error"})
    if v["v"] != 1 or isinstance(v["v"], bool):
        raise SlipError(f"slip version {v['v']!r} is not 1")
    slip = Slip(_frame_list(v["next"], "slip.next"), _frame_list(v.get("on_error", []), "slip.on_error"))
    if known is not None:
        unknown = sorted(t for t in _step_types(slip.next) | _step_types(slip.on_error) if not known(t))
        if unknown:
            raise SlipError(f"the slip names contract(s) unknown here: {', '.join(unknown)}")
    return slip


# -- advance ---------------------------------------------------------------------------------------


def step_body(frame: StepFrame, x: Any) -> dict[str, Any]:
    """The body of ``frame``'s event given the input ``x`` (before validation against its contract)."""
    if frame.input == "none":
        return dict(frame.args)
    if frame.input == "merge":
        if not isinstance(x, dict):
            raise StepInputError(f"step {frame.step} ({frame.type}) merges its input, which must be an object, "
                                 f"got {type(x).__name__ if x is not None else 'null'}")
        return {**x, **frame.args}
    assert frame.field is not None
    return {**frame.args, frame.field: x}


def advance(frames: Sequence[Frame], x: Any, on_error: Sequence[Frame] = ()) -> list[Publish | Join]:
    """What to publish once a branch reached ``frames`` with the result ``x`` (see the wire format)."""
    if not frames:
        return []
    first, rest = frames[0], tuple(frames[1:])
    if isinstance(first, StepFrame):
        return [Publish(first, step_body(first, x), Slip(rest, tuple(on_error)))]
    if isinstance(first, GroupFrame):
        size = len(first.members)
        actions: list[Publish | Join] = []
        for index, member in enumerate(first.members):
            actions += advance((*member, JoinFrame(first.group, index, size), *rest), x, on_error)
        return actions
    return [Join(first, x, rest, tuple(on_error))]
