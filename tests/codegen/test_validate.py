"""``validate_contracts``: every fault of a tree in one report, nothing on the real contracts."""

from __future__ import annotations

from pathlib import Path

from eventbus_codegen import Problem, validate_contracts

from .conftest import CONTRACTS, EditSchema

ENDED = "chat/conversation.ended.v1.schema.json"


def test_the_repository_contracts_are_valid() -> None:
    assert validate_contracts(CONTRACTS) == []


def test_an_example_that_breaks_its_schema(contracts_copy: Path, edit_schema: EditSchema) -> None:
    path = edit_schema(ENDED, lambda s: s["examples"][1]["participants"].append("not a user id!"))

    problems = validate_contracts(contracts_copy)

    assert [(p.path, p.pointer) for p in problems] == [(path, "/examples/1/participants/3")]
    assert "example 1 does not match the schema" in problems[0].message
    assert "not a user id!" in problems[0].message


def test_formats_are_checked_like_the_sdk_does(contracts_copy: Path, edit_schema: EditSchema) -> None:
    edit_schema(ENDED, lambda s: s["examples"][0].update(ended_at="yesterday"))

    problems = validate_contracts(contracts_copy)

    assert [p.pointer for p in problems] == ["/examples/0/ended_at"]


def test_missing_description_and_examples(contracts_copy: Path, edit_schema: EditSchema) -> None:
    def strip(schema: dict) -> None:
        del schema["description"]
        schema["examples"] = []

    path = edit_schema(ENDED, strip)

    problems = validate_contracts(contracts_copy)

    assert {(p.path, p.pointer) for p in problems} == {(path, "/description"), (path, "/examples")}


def test_shared_documents_need_a_description_too(contracts_copy: Path, edit_schema: EditSchema) -> None:
    path = edit_schema("common/time.schema.json", lambda s: s.pop("description"))

    assert [(p.path, p.pointer) for p in validate_contracts(contracts_copy)] == [(path, "/description")]


def test_an_invalid_schema_is_located(contracts_copy: Path, edit_schema: EditSchema) -> None:
    path = edit_schema(ENDED, lambda s: s["properties"]["message_count"].update(type="count"))

    problems = validate_contracts(contracts_copy)

    assert (path, "/properties/message_count/type") in [(p.path, p.pointer) for p in problems]
    assert any("not a valid draft 2020-12 schema" in p.message for p in problems)


def test_the_draft_must_be_2020_12(contracts_copy: Path, edit_schema: EditSchema) -> None:
    path = edit_schema(ENDED, lambda s: s.update({"$schema": "http://json-schema.org/draft-07/schema#"}))

    assert (path, "/$schema") in [(p.path, p.pointer) for p in validate_contracts(contracts_copy)]


def test_load_errors_are_problems_and_every_file_is_reported(contracts_copy: Path, edit_schema: EditSchema) -> None:
    ended = edit_schema(ENDED, lambda s: s["x-eventbus"].update(type="chat.conversation.over.v1", routingkey="x"))
    candidates = edit_schema("context/candidates.updated.v1.schema.json", lambda s: s.pop("description"))

    problems = validate_contracts(contracts_copy)

    assert [(p.path, p.pointer) for p in problems] == [
        (ended, "/x-eventbus/type"),
        (ended, "/x-eventbus/routingkey"),
        (candidates, "/description"),
    ]


def test_shared_documents_carry_no_metadata(contracts_copy: Path, edit_schema: EditSchema) -> None:
    path = edit_schema("common/user.schema.json", lambda s: s.update({"x-eventbus": {"type": "user"}}))

    assert [(p.path, p.pointer) for p in validate_contracts(contracts_copy)] == [(path, "/x-eventbus")]


def test_unreadable_file_is_one_problem(contracts_copy: Path) -> None:
    path = contracts_copy / ENDED
    path.write_text("{", encoding="utf-8")

    problems = validate_contracts(contracts_copy)

    assert [(p.path, p.pointer) for p in problems] == [(path, "")]


def test_problem_reads_as_one_line() -> None:
    problem = Problem(Path("contracts/chat/x.schema.json"), "/examples/0", "bad")

    assert str(problem) == "contracts/chat/x.schema.json#/examples/0: bad"
