"""``eventbus.load_schema_contracts``: contracts read at run time from a folder of JSON Schemas."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import orjson
import pytest

from eventbus import ContractError, EventValidationError, contract_for, load_schema_contracts

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


def test_every_event_of_the_folder_with_its_metadata() -> None:
    registry = load_schema_contracts(CONTRACTS)
    assert [c.type for c in registry] == [
        "chat.conversation.ended.v1", "context.candidates.updated.v1", "context.friendship.status_changed.v1"]
    ended = registry.get("chat.conversation.ended.v1")
    assert (ended.exchange, ended.routing_key, ended.owner) == ("chat", "chat.conversation.ended.v1", "chat-backend")
    assert ended.schema_id.endswith("/chat/conversation.ended.v1.schema.json")


def test_examples_round_trip_and_the_model_finds_its_contract() -> None:
    ended = load_schema_contracts(CONTRACTS).get("chat.conversation.ended.v1")
    example = ended.schema["examples"][0]
    event = ended.decode(orjson.dumps(example))
    assert contract_for(event) is ended
    assert orjson.loads(ended.encode(event)) == example


def test_constraints_reached_by_ref_are_enforced() -> None:
    ended = load_schema_contracts(CONTRACTS).get("chat.conversation.ended.v1")
    bad = {**ended.schema["examples"][0], "participants": ["not a user id!", "u_2"]}
    with pytest.raises(EventValidationError) as caught:
        ended.validate_python(bad)
    assert caught.value.violations[0].instance_path == "/participants/0"


def test_an_unknown_type_lists_the_known_ones() -> None:
    with pytest.raises(ContractError, match=r"unknown event type 'a.b.c.v1' \(known: chat.conversation.ended.v1, "):
        load_schema_contracts(CONTRACTS).get("a.b.c.v1")


def test_incomplete_metadata_names_the_file(tmp_path: Path) -> None:
    shutil.copytree(CONTRACTS, tmp_path / "contracts")
    path = tmp_path / "contracts" / "chat" / "conversation.ended.v1.schema.json"
    schema = json.loads(path.read_text())
    del schema["x-eventbus"]["exchange"]
    path.write_text(json.dumps(schema))
    with pytest.raises(ContractError, match=r"conversation\.ended\.v1\.schema\.json: x-eventbus needs"):
        load_schema_contracts(tmp_path / "contracts")
    with pytest.raises(ContractError, match="does not exist"):
        load_schema_contracts(tmp_path / "nothing")
