"""The language-neutral type model: what each JSON Schema shape becomes, and what is refused."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from eventbus_codegen import CodegenWarning, GenerationError, load_contracts
from eventbus_codegen._model import (
    AnyJSON,
    ArrayOf,
    EnumDecl,
    Literal,
    MapOf,
    Named,
    Nullable,
    ObjectDecl,
    Scalar,
    TypeModel,
    UnionDecl,
)
from eventbus_codegen._typemodel import build_type_model

from .conftest import CONTRACTS, EditSchema

TYPEMAP = Path(__file__).parent / "typemap_contracts"
ENDED = "chat/conversation.ended.v1.schema.json"


@pytest.fixture(scope="module")
def typemap() -> TypeModel:
    return build_type_model(load_contracts(TYPEMAP))


def _fields(model: TypeModel, name: str) -> dict[str, object]:
    declaration = model.declaration(name)
    assert isinstance(declaration, ObjectDecl)
    return {field.json_name: field for field in declaration.fields}


def test_our_contracts_share_declarations_from_common() -> None:
    model = build_type_model(load_contracts(CONTRACTS))
    assert [c.title for c in model.contracts] == ["ConversationEndedV1", "CandidatesUpdatedV1",
                                                 "FriendshipStatusChangedV1"]
    status = model.declaration("FriendshipStatus")
    assert isinstance(status, EnumDecl) and status.values == ("stranger", "acquaintance", "friend", "close_friend")
    fields = _fields(model, "FriendshipStatusChangedV1")
    assert fields["status"].type == fields["previous_status"].type == Named("FriendshipStatus")
    ended = _fields(model, "ConversationEndedV1")
    assert ended["started_at"].type == Scalar("string", "date-time") and ended["started_at"].required
    assert ended["messages_by_participant"].type == MapOf(Scalar("integer"))
    assert not ended["ended_reason"].required
    assert ended["participants"].type == ArrayOf(Scalar("string"))
    assert _fields(model, "CandidatesUpdatedV1")["candidates"].type == ArrayOf(Named("CandidatesUpdatedV1Candidate"))


def test_every_supported_shape_maps(typemap: TypeModel) -> None:
    fields = _fields(typemap, "EverythingChangedV1")
    assert fields["id"].type == Scalar("string", "uuid")
    assert fields["count"].type == Scalar("integer") and fields["ratio"].type == Scalar("number")
    assert fields["enabled"].default is True and not fields["enabled"].required
    assert fields["origin"].type == Named("Point") and fields["path"].type == ArrayOf(Named("Point"))
    assert fields["kind"].type == Literal("fixture")
    assert fields["maybe_note"].type == Nullable(Scalar("string")) and fields["maybe_note"].required
    assert fields["maybe_count"].type == Nullable(Scalar("integer"))
    assert fields["maybe_origin"].type == Nullable(Named("Point"))
    assert fields["anything"].type == AnyJSON()
    assert fields["labels"].type == MapOf(Scalar("string"))
    assert {"@type", "kebab-case", "2fa", "class", "default", "Type"} <= fields.keys()
    priority = typemap.declaration("EverythingChangedV1Priority")
    assert isinstance(priority, EnumDecl) and priority.kind == "integer" and priority.values == (1, 2, 3)
    meta = typemap.declaration("EverythingChangedV1Meta")
    assert isinstance(meta, ObjectDecl) and meta.extra == AnyJSON()  # open: unknown keys are kept
    assert typemap.declaration("Point").extra is None  # additionalProperties: false


def test_unions_are_tagged_by_a_constant_property_or_told_apart_by_kind(typemap: TypeModel) -> None:
    shape = typemap.declaration("EverythingChangedV1Shape")
    assert isinstance(shape, UnionDecl) and shape.discriminator == "kind"
    assert [(v.type, v.tag) for v in shape.variants] == [
        (Named("EverythingChangedV1Circle"), "circle"), (Named("EverythingChangedV1Square"), "square")
    ]
    by_kind = typemap.declaration("EverythingChangedV1IdOrNumber")
    assert isinstance(by_kind, UnionDecl) and by_kind.by_kind and not by_kind.opaque
    assert [v.kind for v in by_kind.variants] == ["string", "integer"]


def test_untagged_object_unions_are_opaque(contracts_copy: Path, edit_schema: EditSchema) -> None:
    def change(schema: dict) -> None:
        schema["properties"]["ended_reason"] = {"oneOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}},
            {"type": "object", "properties": {"b": {"type": "string"}}},
        ]}

    edit_schema(ENDED, change)
    union = build_type_model(load_contracts(contracts_copy)).declaration("ConversationEndedV1EndedReason")
    assert isinstance(union, UnionDecl) and union.opaque


@pytest.mark.parametrize(
    ("schema", "pointer", "message"),
    [
        ({"type": "array", "prefixItems": [{"type": "string"}]}, "/properties/ended_reason", "tuple"),
        ({"type": "object", "properties": {"a": {"type": "string"}},
          "oneOf": [{"type": "string"}, {"type": "integer"}]},
         "/properties/ended_reason/oneOf/0", "not plain objects"),
        ({"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}},
                    {"type": "object", "properties": {"a": {"type": "integer"}}}]},
         "/properties/ended_reason/allOf/1/properties/a", "do not agree"),
        ({"enum": [{"a": 1}, {"b": 2}]}, "/properties/ended_reason", "objects or arrays"),
    ],
)
def test_what_has_no_static_type_is_widened_with_a_warning_at_its_schema_path(
    contracts_copy: Path, edit_schema: EditSchema, schema: object, pointer: str, message: str
) -> None:
    path = edit_schema(ENDED, lambda s: s["properties"].__setitem__("ended_reason", schema))
    with pytest.warns(CodegenWarning) as caught:
        model = build_type_model(load_contracts(contracts_copy))
    assert "ended_reason" in _fields(model, "ConversationEndedV1")
    texts = [str(warning.message) for warning in caught]
    assert any(text.startswith(f"{path.as_posix()}#{pointer}: ") and message in text for text in texts), texts
    if message == "do not agree":
        assert _fields(model, "ConversationEndedV1EndedReason")["a"].type == AnyJSON()


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (False, None),  # false: the property must be absent, so no field
        ({"enum": ["a", 1]}, "union"),  # a union by kind of one enum per kind
        ({"$dynamicRef": "#meta"}, Scalar("string")),  # a $dynamicRef with one fixed meaning
    ],
)
def test_constructs_with_a_static_meaning_map_without_warnings(
    contracts_copy: Path, edit_schema: EditSchema, schema: object, expected: object
) -> None:
    def change(contract: dict) -> None:
        contract["properties"]["ended_reason"] = schema
        contract["$defs"] = {"Meta": {"$dynamicAnchor": "meta", "type": "string"}}

    edit_schema(ENDED, change)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CodegenWarning)
        model = build_type_model(load_contracts(contracts_copy))
    fields = _fields(model, "ConversationEndedV1")
    if expected is None:
        assert "ended_reason" not in fields
    elif expected == "union":
        union = model.declaration("ConversationEndedV1EndedReason")
        assert isinstance(union, UnionDecl) and union.by_kind and len(union.variants) == 2
    else:
        assert fields["ended_reason"].type == expected


def test_names_stay_apart_when_two_shapes_want_the_same_one(contracts_copy: Path, edit_schema: EditSchema) -> None:
    def change(schema: dict) -> None:
        schema["properties"]["ended_reason"] = {"type": "object", "properties": {"x": {"type": "string"}}}
        schema["$defs"] = {"EndedReason": {"type": "object", "properties": {"y": {"type": "string"}}}}
        schema["properties"]["other"] = {"$ref": "#/$defs/EndedReason"}

    edit_schema(ENDED, change)
    names = {d.name for d in build_type_model(load_contracts(contracts_copy)).declarations}
    assert {"ConversationEndedV1EndedReason", "ConversationEndedV1EndedReason2"} <= names


def test_a_schema_nested_too_deeply_is_an_error_naming_it_not_a_crash(contracts_copy: Path) -> None:
    deep: dict = {"type": "string"}
    for _ in range(300):  # deeper than Python recursion allows a walk, not than JSON allows a file
        deep = {"type": "object", "properties": {"x": deep}}
    path = contracts_copy / ENDED
    schema = json.loads(path.read_text(encoding="utf-8"))
    schema["properties"]["ended_reason"] = deep
    path.write_text(json.dumps(schema), encoding="utf-8")

    contracts = load_contracts(contracts_copy)  # the loader walks schemas without recursion
    with pytest.raises(GenerationError) as caught:
        build_type_model(contracts)
    assert caught.value.path == path
    assert "nests too deeply" in caught.value.message
