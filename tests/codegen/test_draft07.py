"""Draft 2020-12 → draft-07 for gojsonschema: the same meaning, or a clear error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator, Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7, DRAFT202012

from eventbus_codegen import CodegenWarning, load_contracts
from eventbus_codegen._draft07 import DRAFT_07, to_draft07

from .conftest import CONTRACTS

HERE = Path("x.schema.json")


def test_defs_tuples_dependencies_anchors_and_ref_siblings_are_rewritten() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": {"Id": {"$anchor": "id", "type": "string"}},
        "properties": {
            "id": {"$ref": "#/$defs/Id", "minLength": 3, "description": "kept"},
            "pair": {"prefixItems": [{"type": "string"}, {"type": "integer"}], "items": False},
            "other": {"$ref": "other.schema.json#/$defs/Thing"},
        },
        "dependentRequired": {"a": ["b"]},
        "dependentSchemas": {"c": {"required": ["d"]}},
        "examples": [{"$defs": "data is not touched"}],
    }
    out = to_draft07(schema, HERE)
    assert out["$schema"] == DRAFT_07
    assert out["definitions"]["Id"] == {"$id": "#id", "type": "string"}
    assert out["properties"]["id"] == {"allOf": [{"$ref": "#/definitions/Id"}], "minLength": 3, "description": "kept"}
    assert out["properties"]["pair"] == {"items": [{"type": "string"}, {"type": "integer"}], "additionalItems": False}
    assert out["properties"]["other"] == {"$ref": "other.schema.json#/definitions/Thing"}
    assert out["dependencies"] == {"a": ["b"], "c": {"required": ["d"]}}
    assert out["examples"] == [{"$defs": "data is not touched"}]
    Draft7Validator.check_schema(out)


def test_dynamic_and_unevaluated_keywords_get_their_draft07_equivalent_where_one_exists() -> None:
    schema = {
        "$defs": {"Node": {"$dynamicAnchor": "node", "type": "object"}},
        "properties": {
            "closed": {"type": "object", "properties": {"x": {}}, "unevaluatedProperties": False},
            "tail": {"type": "array", "unevaluatedItems": {"type": "string"}},
            "node": {"$dynamicRef": "#node"},
        },
    }
    out = to_draft07(schema, HERE)
    assert out["definitions"]["Node"] == {"$id": "#node", "type": "object"}
    assert out["properties"]["closed"] == {"type": "object", "properties": {"x": {}}, "additionalProperties": False}
    assert out["properties"]["tail"] == {"type": "array", "items": {"type": "string"}}
    assert out["properties"]["node"] == {"$ref": "#node"}
    Draft7Validator.check_schema(out)


@pytest.mark.parametrize(
    ("schema", "keyword"),
    [
        ({"type": "object", "allOf": [{"properties": {"x": {}}}], "unevaluatedProperties": False},
         "unevaluatedProperties"),
        ({"type": "array", "contains": {"type": "string"}, "minContains": 2}, "minContains"),
    ],
)
def test_what_draft07_cannot_say_is_left_out_of_the_go_copy_with_a_warning(schema: dict, keyword: str) -> None:
    with pytest.warns(CodegenWarning) as caught:
        out = to_draft07({"properties": {"a": schema}}, HERE)
    assert keyword not in out["properties"]["a"]
    assert any(str(w.message).startswith(f"x.schema.json#/properties/a/{keyword}: ") for w in caught)


def _validators(draft: str) -> dict[str, Any]:
    contracts = load_contracts(CONTRACTS)
    convert = (lambda doc: to_draft07(doc.schema, doc.path)) if draft == "7" else (lambda doc: dict(doc.schema))
    spec = DRAFT7 if draft == "7" else DRAFT202012
    schemas = {doc.schema_id: convert(doc) for doc in contracts.documents}
    registry = Registry().with_resources((i, Resource.from_contents(s, default_specification=spec))
                                         for i, s in schemas.items())
    cls = Draft7Validator if draft == "7" else Draft202012Validator
    return {doc.schema_id: cls(schemas[doc.schema_id], registry=registry, format_checker=cls.FORMAT_CHECKER)
            for doc in contracts.events}


def test_our_contracts_accept_and_reject_the_same_data_in_both_drafts() -> None:
    contracts = load_contracts(CONTRACTS)
    original, translated = _validators("2020-12"), _validators("7")
    for doc in contracts.events:
        examples = list(doc.schema["examples"])
        broken = [{**examples[0], "extra": 1}, {k: v for k, v in examples[0].items() if k != next(iter(examples[0]))}]
        for instance in examples + broken:
            assert original[doc.schema_id].is_valid(instance) == translated[doc.schema_id].is_valid(instance), instance
        assert all(translated[doc.schema_id].is_valid(e) for e in examples)
        assert not any(translated[doc.schema_id].is_valid(b) for b in broken)
