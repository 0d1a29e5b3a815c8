"""The committed ``eventbus_contracts`` package at run time: every contract example goes through it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

import eventbus
import eventbus_contracts
from eventbus import ContractError, EventValidationError
from eventbus_contracts import REGISTRY

from .conftest import CONTRACTS


def _examples() -> list[tuple[str, int, Any]]:
    cases = []
    for path in sorted(CONTRACTS.glob("*/*.schema.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        if "x-eventbus" in schema:
            cases.extend((schema["x-eventbus"]["type"], i, example) for i, example in enumerate(schema["examples"]))
    return cases


EXAMPLES = _examples()


def test_registry_holds_every_contract_in_the_tree() -> None:
    types = {path.name.removesuffix(".schema.json") for path in CONTRACTS.glob("*/*.schema.json")}
    expected = {f"{p.parent.name}.{p.name.removesuffix('.schema.json')}" for p in CONTRACTS.glob("*/*.schema.json")}

    assert {contract.type for contract in REGISTRY} == expected - {f"common.{t}" for t in types}
    assert REGISTRY.exchanges == ["chat", "context"]


@pytest.mark.parametrize(("event_type", "index", "example"), EXAMPLES, ids=[f"{t}[{i}]" for t, i, _ in EXAMPLES])
def test_every_example_decodes_into_its_model_and_encodes_back(event_type: str, index: int, example: Any) -> None:
    contract = REGISTRY.get(event_type)

    event = contract.decode(json.dumps(example).encode())

    assert type(event) is contract.model
    assert orjson.loads(contract.encode(event)) == example


def test_models_know_their_contract_from_the_module_alone() -> None:
    from eventbus_contracts.context.friendship_status_changed_v1 import FriendshipStatusChangedV1

    contract = eventbus.contract_for(FriendshipStatusChangedV1)

    assert contract is eventbus_contracts.FRIENDSHIP_STATUS_CHANGED_V1
    assert (contract.exchange, contract.routing_key) == ("context", "context.friendship.status_changed.v1")
    assert contract.schema_id.endswith("/context/friendship.status_changed.v1.schema.json")


def test_user_ids_are_plain_strings_with_their_constraints() -> None:
    contract = eventbus_contracts.CONVERSATION_ENDED_V1
    example = contract.schema["examples"][0]

    event = contract.model.model_validate(example)

    assert all(type(user) is str for user in event.participants)
    with pytest.raises(ValueError, match="pattern"):
        contract.model.model_validate({**example, "participants": ["u_1", "not valid!"]})


def test_schema_violations_are_caught_before_the_model() -> None:
    contract = eventbus_contracts.CONVERSATION_ENDED_V1
    example = dict(contract.schema["examples"][0])
    example["participants"] = ["u_1842", "u_1842"]  # uniqueItems: only the JSON Schema knows

    with pytest.raises(EventValidationError) as caught:
        contract.decode(json.dumps(example).encode())

    assert caught.value.event_type == "chat.conversation.ended.v1"


def test_each_contract_carries_only_the_resources_it_reaches() -> None:
    resources = {contract.type: sorted(contract.resources) for contract in REGISTRY}

    assert [Path(r).name for r in resources["chat.conversation.ended.v1"]] == ["time.schema.json", "user.schema.json"]
    assert [Path(r).name for r in resources["context.friendship.status_changed.v1"]] == [
        "friendship.schema.json",
        "time.schema.json",
        "user.schema.json",
    ]


def test_public_names_are_sorted_and_complete() -> None:
    public = {name for name in vars(eventbus_contracts) if not name.startswith("_")}
    public -= {"chat", "context"}  # subpackages, imported as a side effect

    assert eventbus_contracts.__all__ == sorted(eventbus_contracts.__all__)
    assert set(eventbus_contracts.__all__) == public
    for contract in REGISTRY:
        assert contract.model.__name__ in eventbus_contracts.__all__


def test_unknown_type_is_a_contract_error() -> None:
    with pytest.raises(ContractError):
        REGISTRY.get("chat.conversation.started.v1")
