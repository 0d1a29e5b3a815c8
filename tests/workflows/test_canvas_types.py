"""The canvas at build time, with no broker: the inputs it decides, the plan and ids, and the type
errors it raises (each rule of docs/workflows.md, Typing), with messages that name what does not fit."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from eventbus import BusSettings, ConfigurationError, EventBus, EventContract
from eventbus.workflows import (
    SLIP_HEADER,
    Signature,
    WorkflowFailed,
    chain,
    chord,
    compile_canvas,
    group,
    parse_slip,
    plan_steps,
    start_messages,
    step,
)
from eventbus.workflows._slip import GroupFrame, StepFrame

from ._models import Profile, Summary


class Other(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str


bus = EventBus(BusSettings(service="wf-types", urls=("amqp://127.0.0.1:1/",)))


@bus.task
async def fetch(user_id: str) -> Profile:
    return Profile(user_id=user_id, score=1)


@bus.task
async def enrich(profile: Profile, bonus: int = 0) -> Profile:
    return profile


@bus.task
async def rescore(user_id: str, score: int, extra: int = 0) -> Profile:
    return Profile(user_id=user_id, score=score)


@bus.task
async def total(profiles: list[Profile]) -> Summary:
    return Summary(total=len(profiles))


@bus.task
async def notify(summary: Summary) -> None:
    return None


@bus.task
async def wrong(count: int) -> None:
    return None


@bus.task
async def mismatched(user_id: str, score: str) -> None:
    return None


@bus.task
async def on_failure(failure: WorkflowFailed) -> None:
    return None


def _steps(frames: Any) -> list[StepFrame]:
    out: list[StepFrame] = []
    for frame in frames:
        if isinstance(frame, StepFrame):
            out.append(frame)
        elif isinstance(frame, GroupFrame):
            for member in frame.members:
                out += _steps(member)
    return out


def test_a_chain_decides_none_then_field_then_merge() -> None:
    compiled, _ = compile_canvas(fetch.si("u1") | enrich.s(bonus=2) | rescore.s())
    inputs = [(f.step, f.input, f.field, dict(f.args)) for f in _steps(compiled.frames)]
    assert inputs == [("0", "none", None, {"user_id": "u1"}), ("1", "field", "profile", {"bonus": 2}),
                      ("2", "merge", None, {})]
    assert compiled.result is not None and compiled.result.type == "test.workflow.profile.v1"


def test_a_chord_callback_takes_the_list_and_the_plan_names_every_id() -> None:
    compiled, _ = compile_canvas(chain(fetch.si("a"), chord([enrich.s(), enrich.s(bonus=1)], total.s()), notify.s()))
    assert compiled.plan == {"kind": "chain", "steps": [
        {"kind": "step", "step": "0", "type": fetch.type, "result_type": "test.workflow.profile.v1"},
        {"kind": "chord", "group": "1", "members": [
            {"kind": "step", "step": "1.0", "type": enrich.type, "result_type": "test.workflow.profile.v1"},
            {"kind": "step", "step": "1.1", "type": enrich.type, "result_type": "test.workflow.profile.v1"}],
         "callback": {"kind": "step", "step": "1.cb", "type": total.type, "result_type": "test.workflow.summary.v1"}},
        {"kind": "step", "step": "2", "type": notify.type, "result_type": None}]}
    callback = next(f for f in _steps(compiled.frames) if f.step == "1.cb")
    assert (callback.input, callback.field) == ("field", "profiles")
    assert plan_steps(compiled.plan) == [("0", fetch.type), ("1.0", enrich.type), ("1.1", enrich.type),
                                         ("1.cb", total.type), ("2", notify.type)]


def test_a_result_that_fits_no_field_names_both_contracts_and_the_field() -> None:
    with pytest.raises(ConfigurationError) as caught:
        compile_canvas(chain(fetch.si("u"), wrong.s()))
    text = str(caught.value)
    assert "test.workflow.profile.v1" in text and wrong.type in text and "'count'" in text


def test_a_merge_with_another_json_type_names_the_field() -> None:
    with pytest.raises(ConfigurationError, match=r"field 'score' has another JSON type"):
        compile_canvas(chain(fetch.si("u"), mismatched.s()))


def test_a_merge_into_a_closed_contract_without_the_field_is_refused() -> None:
    other = EventContract(type="test.workflow.other.v1", exchange="test", model=Other,
                          schema={**Other.model_json_schema(), "additionalProperties": False})
    merging = Signature(other, {"label": "x"})  # takes input though its required field is given
    with pytest.raises(ConfigurationError, match=r"has no field 'user_id'"):
        compile_canvas(chain(fetch.si("u"), merging))


def test_a_step_that_needs_input_after_a_step_without_result_fails_at_build() -> None:
    with pytest.raises(ConfigurationError, match=r"has no result"):
        compile_canvas(chain(notify.si(summary=Summary(total=1)), enrich.s()))


def test_the_first_step_needs_its_whole_payload() -> None:
    with pytest.raises(ConfigurationError, match=r"first step.*user_id"):
        compile_canvas(chain(fetch.s(), enrich.s()))


def test_a_chord_callback_must_accept_a_list_of_the_members_results() -> None:
    with pytest.raises(ConfigurationError, match=r"follows a group.*a list of \[test.workflow.profile.v1"):
        compile_canvas(chord([fetch.si("a"), fetch.si("b")], enrich.s()))
    with pytest.raises(ConfigurationError, match=r"follows a group"):
        compile_canvas(chord([fetch.si("a"), notify.si(summary=Summary(total=1))], total.s()))


def test_step_of_a_contract_with_into_and_returns() -> None:
    compiled, _ = compile_canvas(chain(fetch.si("u"), step(enrich.model, {"bonus": 3}, into="profile",
                                                           returns=Profile), enrich.s()))
    frames = _steps(compiled.frames)
    assert [(f.input, f.field) for f in frames] == [("none", None), ("field", "profile"), ("field", "profile")]
    with pytest.raises(ConfigurationError, match=r"field 'bonus'.*does not accept"):
        compile_canvas(chain(fetch.si("u"), step(enrich.model, {}, into="bonus")))


def test_a_step_with_its_complete_payload_takes_no_input() -> None:
    compiled, _ = compile_canvas(chain(fetch.si("u"), step(rescore.model, {"user_id": "x", "score": 2})))
    assert [f.input for f in _steps(compiled.frames)] == ["none", "none"]


def test_on_error_gets_the_failure_report() -> None:
    _, errors = compile_canvas(fetch.si("u"), on_error=on_failure.s())
    assert errors is not None
    assert [(f.step, f.input, f.field) for f in _steps(errors.frames)] == [("err.0", "field", "failure")]
    with pytest.raises(ConfigurationError):
        compile_canvas(fetch.si("u"), on_error=wrong.s())


def test_a_large_group_after_a_step_is_refused_but_starts_fine_at_the_top() -> None:
    big = [enrich.s(bonus=i) for i in range(3000)]
    with pytest.raises(ConfigurationError, match=r"more than 65536"):
        compile_canvas(chain(fetch.si("u"), group(big)))
    workflow_id, messages = start_messages(chord([fetch.si(user_id=f"u{i}") for i in range(3000)], total.s()),
                                           on_error=None, workflow_id="wf-1", source="test",
                                           contracts=lambda t: {c.type: c for c in (fetch.contract, total.contract)}
                                           .get(t))
    assert workflow_id == "wf-1" and len(messages) == 3001
    assert messages[0].event_type == "eventbus.workflow.started.v1"
    slips = [parse_slip(m.headers[SLIP_HEADER]) for m in messages[1:]]
    assert max(len(m.headers[SLIP_HEADER]) for m in messages[1:]) < 1000
    assert [s.next[0].index for s in slips[:3]] == [0, 1, 2]  # type: ignore[union-attr]


def test_a_first_step_whose_payload_breaks_its_contract_fails_at_build() -> None:
    with pytest.raises(ConfigurationError, match=r"breaks the contract"):
        compile_canvas(step(rescore.model, {"user_id": "x", "score": "nope"}))


def test_steps_of_generated_contracts_of_other_languages_are_checked_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    from pathlib import Path

    generated = Path(__file__).resolve().parents[2] / "examples" / "workflows" / "generated" / "python"
    monkeypatch.syspath_prepend(str(generated))
    sys.modules.pop("wfdemo_contracts", None)
    from wfdemo_contracts import NotifyV1, PrepareV1, ScoreV1, SquaredV1, SquareV1, TotalV1

    squares = chord([step(SquareV1, {"n": i}, returns=SquaredV1) for i in range(3)], step(TotalV1))
    compiled, _ = compile_canvas(squares)
    callback = next(f for f in _steps(compiled.frames) if f.step == "0.cb")
    assert (callback.input, callback.field) == ("field", "results")
    compiled, _ = compile_canvas(chain(step(PrepareV1, {"user_id": "u"}, returns=ScoreV1), step(ScoreV1)))
    assert [f.input for f in _steps(compiled.frames)] == ["none", "merge"]
    with pytest.raises(ConfigurationError, match=r"wfdemo.*points|points.*wfdemo"):
        compile_canvas(chain(step(PrepareV1, {"user_id": "u"}, returns=ScoreV1), step(NotifyV1)))
