"""Schemas nobody here wrote: bundled documents, refs in odd places, roots that are not objects.

A small contracts tree in the shapes public schemas take — a vendored bundle keeping each original
file under its own ``$id`` (AsyncAPI's), a large shared document of which a contract uses a little
(Octokit's), ``$ref``s inside ``examples``, a ``$ref`` to a whole document, a root that is an
array — checked through loading, bundling (what the Python generator feeds datamodel-code-generator),
the type model, and the Python models at run time.
"""

from __future__ import annotations

import json
import sys
import types
import warnings
from pathlib import Path
from typing import Any

import pytest

from eventbus import EventContract
from eventbus_codegen import load_contracts
from eventbus_codegen._bundle import bundle_contract
from eventbus_codegen._typemodel import build_type_model
from eventbus_codegen.python._models import generate_model_module

BASE = "https://bundle.example/contracts"


def _contract(relative: str, title: str, body: dict[str, Any]) -> dict[str, Any]:
    domain, name = relative.split("/")
    entity, action, _ = name.split(".", 2)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"{BASE}/{relative}", "title": title,
            "x-eventbus": {"type": f"{domain}.{entity}.{action}.v1", "exchange": domain, "owner": "t"}, **body}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "contracts"
    files = {
        "common/vendor.schema.json": {
            "$id": f"{BASE}/common/vendor.schema.json", "title": "Vendor bundle",
            "definitions": {
                "http://vendor.example/info.json": {
                    "$id": "http://vendor.example/info.json", "type": "object", "required": ["title"],
                    "properties": {"title": {"type": "string"}, "contact": {"$ref": "contact.json"}},
                },
                "http://vendor.example/contact.json": {
                    "$id": "http://vendor.example/contact.json", "type": "object",
                    "properties": {"email": {"type": "string"}},
                    "examples": [{"$ref": "#/components/schemas/NotASchema"}],
                },
            },
        },
        "common/big.schema.json": {
            "$id": f"{BASE}/common/big.schema.json", "title": "Big",
            "definitions": {
                "used": {"type": "object", "properties": {"when": {"anyOf": [
                    {"type": "string", "format": "date-time"}, {"type": "null"}]}}},
                **{f"unused{i}": {"type": "object", "properties": {"x": {"type": "integer"}}} for i in range(50)},
            },
        },
        "common/tags.schema.json": {"$id": f"{BASE}/common/tags.schema.json", "title": "Tags", "type": "array",
                                    "items": {"type": "string"}},
        "api/info.published.v1.schema.json": _contract("api/info.published.v1.schema.json", "InfoPublished",
                                                       {"$ref": "http://vendor.example/info.json"}),
        "api/thing.changed.v1.schema.json": _contract("api/thing.changed.v1.schema.json", "ThingChanged", {
            "type": "object",
            "properties": {"thing": {"allOf": [{"$ref": "../common/big.schema.json#/definitions/used"},
                                               {"properties": {"when": {"type": "null"}}}]}},
            "examples": [{"$ref": "../common/missing.schema.json"}],
        }),
        "api/tags.set.v1.schema.json": _contract("api/tags.set.v1.schema.json", "TagsSet",
                                                 {"$ref": "../common/tags.schema.json"}),
    }
    for relative, schema in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(json.dumps(schema), encoding="utf-8")
    return root


def test_refs_to_ids_inside_a_bundle_load_and_refs_inside_examples_are_data(tree: Path) -> None:
    contracts = load_contracts(tree)  # would fail on the examples' $refs if it followed them

    info = next(doc for doc in contracts.events if doc.title == "InfoPublished")
    assert info.reaches == (f"{BASE}/common/vendor.schema.json",)
    assert contracts.locate("http://vendor.example/contact.json") == (
        contracts.by_id(f"{BASE}/common/vendor.schema.json"), "/definitions/http:~1~1vendor.example~1contact.json")


def test_a_bundle_holds_only_what_the_contract_reaches(tree: Path) -> None:
    contracts = load_contracts(tree)
    thing = next(doc for doc in contracts.events if doc.title == "ThingChanged")
    info = next(doc for doc in contracts.events if doc.title == "InfoPublished")

    assert list(bundle_contract(contracts, thing)["$defs"]) == ["Used"]
    bundled = bundle_contract(contracts, info)
    assert bundled["$ref"] == "#/$defs/Info"
    assert sorted(bundled["$defs"]) == ["Contact", "Info"]
    assert bundled["$defs"]["Info"]["properties"]["contact"] == {"$ref": "#/$defs/Contact"}
    assert bundled["$defs"]["Contact"]["examples"] == [{"$ref": "#/components/schemas/NotASchema"}]  # data, as it was


def test_the_type_model_maps_every_contract_and_a_non_object_root_is_an_alias(tree: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = build_type_model(load_contracts(tree))
    tags = next(contract for contract in model.contracts if contract.title == "TagsSetV1")
    assert tags.root == "TagsSetV1"
    assert type(model.declaration("TagsSetV1")).__name__ == "AliasDecl"


def _model(tree: Path, title: str) -> EventContract[Any]:
    contracts = load_contracts(tree)
    document = next(doc for doc in contracts.events if doc.title == title)
    source = generate_model_module(contracts, document, f"{title}V1", "# test")
    module = types.ModuleType(f"bundle_test_{title}")
    sys.modules[module.__name__] = module
    exec(compile(source, "test", "exec"), module.__dict__)
    return EventContract(type=document.event_metadata.type, exchange="t", model=getattr(module, f"{title}V1"),
                         schema=document.schema, resources=contracts.resources_for(document))


@pytest.mark.parametrize(
    ("title", "payload"),
    [
        ("TagsSet", ["a", "b"]),  # a root that is an array: a RootModel the contract attaches to
        ("ThingChanged", {"thing": {"when": None}}),  # allOf narrowing a nullable date-time to null
        ("InfoPublished", {"title": "x", "contact": {"email": "a@b.c"}, "extra": 1}),
    ],
)
def test_python_models_round_trip_what_the_schema_allows(tree: Path, title: str, payload: Any) -> None:
    contract = _model(tree, title)

    assert json.loads(contract.encode(contract.validate_python(payload))) == payload
