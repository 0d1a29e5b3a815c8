"""The Python routing slip passes the shared vectors (tests/conformance/vectors/slip.json) that the
Node and Go runtimes pass too: one behaviour, one specification."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eventbus.workflows._slip import (
    Join,
    Publish,
    SlipError,
    StepInputError,
    advance,
    encode_slip,
    frame_to_json,
    parse_slip,
    step_event_id,
)

VECTORS = json.loads((Path(__file__).parents[1] / "conformance" / "vectors" / "slip.json").read_text())
CASES = VECTORS["cases"]


def _slip_json(raw: str) -> dict[str, Any]:
    value = json.loads(raw)
    value.setdefault("on_error", [])
    return value


def _action(action: Publish | Join) -> dict[str, Any]:
    if isinstance(action, Publish):
        return {"publish": {"step": action.frame.step, "type": action.frame.type, "exchange": action.frame.exchange,
                            "routing_key": action.frame.routing_key,
                            "event_id": step_event_id(VECTORS["workflow_id"], action.frame.step),
                            "body": action.body, "slip": _slip_json(encode_slip(action.slip))}}
    return {"join": {"group": action.frame.join, "index": action.frame.index, "size": action.frame.size,
                     "result": action.result, "next": [frame_to_json(f) for f in action.next],
                     "on_error": [frame_to_json(f) for f in action.on_error]}}


def _expected(action: dict[str, Any]) -> dict[str, Any]:
    if "publish" in action:
        action["publish"]["slip"].setdefault("on_error", [])
    return action


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_vector(case: dict[str, Any]) -> None:
    known = set(VECTORS["known"]).__contains__
    if case.get("error") == "invalid_slip":
        with pytest.raises(SlipError):
            parse_slip(case["slip"], known)
        return
    slip = parse_slip(case["slip"], known)
    if case.get("error") == "workflow_result_invalid":
        with pytest.raises(StepInputError):
            advance(slip.next, case["input"], slip.on_error)
        return
    actions = [_action(a) for a in advance(slip.next, case["input"], slip.on_error)]
    assert actions == [_expected(a) for a in case["actions"]]


def test_vectors_cover_every_kind() -> None:
    kinds = {next(iter(a)) for c in CASES for a in c.get("actions", [])}
    errors = {c["error"] for c in CASES if "error" in c}
    assert kinds == {"publish", "join"}
    assert errors == {"invalid_slip", "workflow_result_invalid"}


def test_bytes_and_non_string_headers() -> None:
    assert parse_slip(b'{"v":1,"next":[]}').next == ()
    with pytest.raises(SlipError):
        parse_slip(12)
    with pytest.raises(SlipError):
        parse_slip(b'\xff\xfe')
