"""Contracts read at run time from a folder of JSON Schemas, for code with no generated package.

The command line (``eventbus publish``, ``tail``, ``dlq``, ``topology``) works on whatever
contracts repository it is pointed at, so it cannot import a generated package: it reads the
``*.schema.json`` files instead. Each file with an ``x-eventbus`` block becomes an
``EventContract`` whose model is a permissive pydantic class (every field kept as sent); the
JSON Schema, checked by jsonschema-rs with every schema of the folder as ``$ref`` resources, is
what decides validity, exactly as for generated models. A service with generated models keeps
using them: their models are typed, these are not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, create_model

from ._contract import ContractRegistry, EventContract
from ._exceptions import ContractError

__all__ = ["load_schema_contracts"]

SCHEMA_SUFFIX = ".schema.json"
_METADATA = "x-eventbus"
_WORD = re.compile(r"[A-Za-z0-9]+")


class _SchemaModel(BaseModel):
    """The model of a contract read from its schema: any object, every field kept."""

    model_config = ConfigDict(extra="allow", frozen=True)


def load_schema_contracts(folder: str | Path) -> ContractRegistry:
    """Every event contract in ``folder`` (``<domain>/<entity>.<action>.vN.schema.json`` with ``x-eventbus``).

    Raises ``ContractError`` naming the file when one cannot be read or its ``x-eventbus`` block
    is incomplete; run ``eventbus contracts lint`` for the full story.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ContractError(f"contracts folder {root} does not exist")
    documents = {path: _read(path) for path in sorted(root.rglob(f"*{SCHEMA_SUFFIX}"))}
    resources = {str(schema["$id"]): schema for schema in documents.values() if isinstance(schema.get("$id"), str)}
    registry = ContractRegistry()
    for path, schema in documents.items():
        metadata = schema.get(_METADATA)
        if metadata is None:
            continue  # a shared document (common/): only reached by $ref
        registry.add(_contract(path, schema, metadata, resources))
    return registry


def _read(path: Path) -> dict[str, Any]:
    try:
        value = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ContractError(f"{path}: cannot read the schema: {exc}") from None
    if not isinstance(value, dict):
        raise ContractError(f"{path}: a schema must be a JSON object")
    return value


def _contract(path: Path, schema: dict[str, Any], metadata: Any, resources: Mapping[str, Any]) -> EventContract[Any]:
    if not isinstance(metadata, dict) or not all(isinstance(metadata.get(key), str) for key in ("type", "exchange")):
        raise ContractError(f"{path}: {_METADATA} needs at least 'type' and 'exchange' (strings)")
    event_type = metadata["type"]
    name = "".join(word.capitalize() for word in _WORD.findall(event_type))
    model = create_model(name, __base__=_SchemaModel)  # one class per contract: contract_for(model) finds it
    return EventContract(
        type=event_type,
        exchange=metadata["exchange"],
        routing_key=str(metadata.get("routing_key") or event_type),
        owner=str(metadata.get("owner", "")),
        compatibility=str(metadata.get("compatibility", "BACKWARD")),
        model=model,
        schema=schema,
        resources={key: value for key, value in resources.items() if key != schema.get("$id")},
    )
