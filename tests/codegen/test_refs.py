"""``iter_refs``: every real ``$ref`` of a schema, resolved, and nothing that only looks like one."""

from __future__ import annotations

from eventbus_codegen._refs import fragment_exists, iter_refs

BASE = "https://eventbus.example/contracts/chat/x.v1.schema.json"


def test_refs_are_resolved_against_the_base_and_located() -> None:
    schema = {
        "properties": {
            "a": {"$ref": "../common/user.schema.json#/$defs/UserId"},
            "examples": {"items": {"$ref": "#/$defs/Local"}},  # a property named like a keyword
            "a/b": {"$ref": "#/$defs/Local"},
        },
        "$defs": {"Local": {"type": "string"}},
        "examples": [{"$ref": "data, not a reference"}],
        "enum": [{"$ref": "data too"}],
        "x-eventbus": {"$ref": "an extension"},
    }

    assert list(iter_refs(schema, BASE)) == [
        ("/properties/a/$ref", "https://eventbus.example/contracts/common/user.schema.json#/$defs/UserId"),
        ("/properties/examples/items/$ref", f"{BASE}#/$defs/Local"),
        ("/properties/a~1b/$ref", f"{BASE}#/$defs/Local"),
    ]


def test_nested_id_changes_the_base() -> None:
    schema = {"$defs": {"Inner": {"$id": "https://other.example/inner.json", "$ref": "sibling.json"}}}

    assert list(iter_refs(schema, BASE)) == [("/$defs/Inner/$ref", "https://other.example/sibling.json")]


def test_fragments_by_pointer_and_anchor() -> None:
    schema = {"$defs": {"A~B": {"items": [{"$anchor": "first"}]}, "C/D": {}}}

    assert fragment_exists(schema, "")
    assert fragment_exists(schema, "/$defs/A~0B/items/0")
    assert fragment_exists(schema, "/$defs/C~1D")
    assert fragment_exists(schema, "first")
    assert not fragment_exists(schema, "/$defs/Missing")
    assert not fragment_exists(schema, "/$defs/A~0B/items/1")
    assert not fragment_exists(schema, "second")
