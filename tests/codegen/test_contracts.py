"""Loading the contracts tree: what it finds, and errors that name ``file#/pointer``."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

import pytest

from eventbus_codegen import ContractLoadError, load_contracts

from .conftest import CONTRACTS, EditSchema

COMMON = "https://eventbus.example/contracts/common/"
ENDED = "chat/conversation.ended.v1.schema.json"


def test_loads_events_and_shared_documents() -> None:
    contracts = load_contracts(CONTRACTS)

    assert [str(doc.relative_path) for doc in contracts.events] == [
        ENDED,
        "context/candidates.updated.v1.schema.json",
        "context/friendship.status_changed.v1.schema.json",
    ]
    assert sorted(contracts.shared) == [
        f"{COMMON}friendship.schema.json",
        f"{COMMON}time.schema.json",
        f"{COMMON}user.schema.json",
    ]
    ended = contracts.events[0]
    assert ended.path == CONTRACTS / ENDED
    assert ended.relative_path == PurePosixPath(ENDED)
    assert ended.schema_id == f"https://eventbus.example/contracts/{ENDED}"
    meta = ended.event_metadata
    assert (meta.type, meta.exchange, meta.routing_key, meta.owner, meta.compatibility, meta.major_version) == (
        "chat.conversation.ended.v1",
        "chat",
        "chat.conversation.ended.v1",
        "chat-backend",
        "BACKWARD",
        1,
    )
    assert (meta.domain, meta.entity, meta.action) == ("chat", "conversation", "ended")


def test_each_event_reaches_exactly_the_shared_documents_it_references() -> None:
    contracts = load_contracts(CONTRACTS)
    reaches = {doc.event_metadata.type: doc.reaches for doc in contracts.events}

    assert reaches == {
        "chat.conversation.ended.v1": (f"{COMMON}time.schema.json", f"{COMMON}user.schema.json"),
        "context.candidates.updated.v1": (f"{COMMON}time.schema.json", f"{COMMON}user.schema.json"),
        "context.friendship.status_changed.v1": (
            f"{COMMON}friendship.schema.json",
            f"{COMMON}time.schema.json",
            f"{COMMON}user.schema.json",
        ),
    }
    ended = contracts.events[0]
    assert contracts.resources_for(ended) == {
        schema_id: contracts.shared[schema_id].schema for schema_id in ended.reaches
    }


def test_reach_is_transitive(contracts_copy: Path, edit_schema: EditSchema) -> None:
    def add_pair(schema: dict) -> None:
        schema["$defs"]["Pair"] = {"type": "array", "items": {"$ref": "user.schema.json#/$defs/UserId"}}

    edit_schema("common/friendship.schema.json", add_pair)
    edit_schema(
        "chat/conversation.ended.v1.schema.json",
        lambda s: s["properties"].update(pair={"$ref": "../common/friendship.schema.json#/$defs/Pair"}),
    )

    ended = load_contracts(contracts_copy).events[0]

    assert f"{COMMON}friendship.schema.json" in ended.reaches
    assert f"{COMMON}user.schema.json" in ended.reaches


def _load_error(root: Path) -> ContractLoadError:
    with pytest.raises(ContractLoadError) as caught:
        load_contracts(root)
    return caught.value


def test_missing_type_names_file_and_pointer(contracts_copy: Path, edit_schema: EditSchema) -> None:
    path = edit_schema(ENDED, lambda s: s["x-eventbus"].pop("type"))

    error = _load_error(contracts_copy)

    assert (error.path, error.pointer) == (path, "/x-eventbus/type")
    assert str(error) == f"{path.as_posix()}#/x-eventbus/type: missing x-eventbus.type"


def test_type_must_match_file_name(contracts_copy: Path, edit_schema: EditSchema) -> None:
    path = edit_schema(ENDED, lambda s: s["x-eventbus"].update(type="chat.conversation.finished.v1"))

    error = _load_error(contracts_copy)

    assert (error.path, error.pointer) == (path, "/x-eventbus/type")
    assert "'chat.conversation.finished.v1'" in error.message
    assert "'chat.conversation.ended.v1'" in error.message


def test_exchange_must_be_the_domain_folder(contracts_copy: Path, edit_schema: EditSchema) -> None:
    path = edit_schema(ENDED, lambda s: s["x-eventbus"].update(exchange="context"))

    error = _load_error(contracts_copy)

    assert (error.path, error.pointer) == (path, "/x-eventbus/exchange")


def test_missing_metadata_block(contracts_copy: Path, edit_schema: EditSchema) -> None:
    path = edit_schema(ENDED, lambda s: s.pop("x-eventbus"))

    error = _load_error(contracts_copy)

    assert (error.path, error.pointer) == (path, "/x-eventbus")
    assert "chat.conversation.ended.v1" in error.message  # says what to write


def test_unknown_compatibility_mode(contracts_copy: Path, edit_schema: EditSchema) -> None:
    edit_schema(ENDED, lambda s: s["x-eventbus"].update(compatibility="SIDEWAYS"))

    assert _load_error(contracts_copy).pointer == "/x-eventbus/compatibility"


def test_unreadable_json(contracts_copy: Path) -> None:
    path = contracts_copy / ENDED
    path.write_text('{"title": "ConversationEnded",\n  oops}', encoding="utf-8")

    error = _load_error(contracts_copy)

    assert (error.path, error.pointer) == (path, "")
    assert "invalid JSON at line 2" in error.message


def test_duplicate_keys_are_rejected(contracts_copy: Path) -> None:
    path = contracts_copy / ENDED
    path.write_text(path.read_text(encoding="utf-8").replace("{\n", '{\n  "title": "Twice",\n', 1), encoding="utf-8")

    error = _load_error(contracts_copy)

    assert error.path == path
    assert "duplicate key 'title'" in error.message


@pytest.mark.parametrize(
    "name", ["conversation-ended.v1.schema.json", "conversation.ended.schema.json", "Conversation.ended.v1.schema.json"]
)
def test_file_names_follow_the_convention(contracts_copy: Path, name: str) -> None:
    (contracts_copy / ENDED).rename(contracts_copy / "chat" / name)

    error = _load_error(contracts_copy)

    assert (error.path, error.pointer) == (contracts_copy / "chat" / name, "")
    assert "<domain>/<entity>.<action>.v<N>.schema.json" in error.message


def test_id_must_end_with_the_file_path(contracts_copy: Path, edit_schema: EditSchema) -> None:
    path = edit_schema(ENDED, lambda s: s.update({"$id": "https://eventbus.example/contracts/chat/other.schema.json"}))

    error = _load_error(contracts_copy)

    assert (error.path, error.pointer) == (path, "/$id")


def test_missing_id(contracts_copy: Path, edit_schema: EditSchema) -> None:
    path = edit_schema("common/user.schema.json", lambda s: s.pop("$id"))

    error = _load_error(contracts_copy)  # before the $refs that now lead nowhere

    assert (error.path, error.pointer) == (path, "/$id")


def test_ref_to_a_missing_file_names_the_ref(contracts_copy: Path, edit_schema: EditSchema) -> None:
    def break_ref(schema: dict) -> None:
        schema["properties"]["participants"]["items"]["$ref"] = "../common/users.schema.json#/$defs/UserId"

    path = edit_schema(ENDED, break_ref)

    error = _load_error(contracts_copy)

    assert (error.path, error.pointer) == (path, "/properties/participants/items/$ref")
    assert "users.schema.json" in error.message


def test_ref_to_a_missing_definition(contracts_copy: Path, edit_schema: EditSchema) -> None:
    def break_ref(schema: dict) -> None:
        schema["properties"]["started_at"]["$ref"] = "../common/time.schema.json#/$defs/Instant"

    path = edit_schema(ENDED, break_ref)

    error = _load_error(contracts_copy)

    assert (error.path, error.pointer) == (path, "/properties/started_at/$ref")
    assert "#/$defs/Instant" in error.message


def test_refs_inside_examples_are_data_not_references(contracts_copy: Path, edit_schema: EditSchema) -> None:
    edit_schema(ENDED, lambda s: s["examples"].append({"$ref": "nowhere.json"}))

    load_contracts(contracts_copy)  # no error: examples are instances, not schemas


def test_title_must_name_a_class(contracts_copy: Path, edit_schema: EditSchema) -> None:
    path = edit_schema(ENDED, lambda s: s.update(title="conversation ended"))

    error = _load_error(contracts_copy)

    assert (error.path, error.pointer) == (path, "/title")


def test_error_location_is_relative_when_root_is(contracts_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(contracts_copy.parent)
    (contracts_copy / ENDED).write_text(json.dumps([1, 2]), encoding="utf-8")

    error = _load_error(Path("contracts"))

    assert str(error).startswith(f"contracts/{ENDED}: ")  # the whole file: no pointer


def test_missing_root_directory(tmp_path: Path) -> None:
    error = _load_error(tmp_path / "nowhere")

    assert "not found" in error.message
