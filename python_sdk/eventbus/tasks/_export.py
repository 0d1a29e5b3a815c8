"""The tasks of a bus as contract files, in the house style ``eventbus contracts lint`` checks.

``task_documents(contracts, base_id)`` → ``{"tasks/<svc>.<name>.vN.schema.json": document}``;
the command line writes them (``eventbus contracts export``) or compares them with the files
(``--check``). A document is the contract's JSON Schema with ``$schema``, ``$id`` (under the
project's ``base_id``), ``title``, ``description``, the ``x-eventbus`` block and ``examples``:
the task's own (``@bus.task(examples=[...])``) or one made from the schema, checked by lint.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._contract import EventContract

__all__ = ["task_documents"]

_DRAFT = "https://json-schema.org/draft/2020-12/schema"
_FIRST = ("$schema", "$id", "title", "description", "x-eventbus", "type", "additionalProperties", "required",
          "properties", "$defs")


def _example(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> Any:
    """A plausible value for ``schema`` (required properties only): the default, else the first enum
    value, else a placeholder of the right type."""
    if "$ref" in schema:
        return _example(defs.get(str(schema["$ref"]).rsplit("/", 1)[-1], {}), defs)
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"] or schema[key]
            return _example(options[0], defs)
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: _example(properties[name], defs) for name in schema.get("required", []) if name in properties}
    if kind == "array":
        return [_example(schema["items"], defs) for _ in range(int(schema.get("minItems", 0)))]
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "date-time":
            return "2026-01-01T00:00:00Z"
        if fmt == "date":
            return "2026-01-01"
        return "x" * max(1, int(schema.get("minLength", 1)))
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    return None


def task_document(contract: EventContract[Any], base_id: str, examples: Sequence[Mapping[str, Any]] = ()
                  ) -> dict[str, Any]:
    """The contract file of one task's contract."""
    schema = dict(contract.schema)
    relative = f"{contract.exchange}/{contract.type.split('.', 1)[1]}.schema.json"
    document: dict[str, Any] = {
        "$schema": _DRAFT,
        "$id": base_id.rstrip("/") + "/" + relative,
        "x-eventbus": {
            "type": contract.type,
            "exchange": contract.exchange,
            "routing_key": contract.routing_key,
            "owner": contract.owner,
            "compatibility": contract.compatibility,
        },
        **{k: v for k, v in schema.items() if k not in ("$schema", "$id")},
        "examples": [dict(e) for e in examples] or [_example(schema, schema.get("$defs", {}))],
    }
    ordered = {key: document[key] for key in _FIRST if key in document}
    ordered.update((key, value) for key, value in document.items() if key not in ordered)
    return ordered


def task_documents(tasks: Iterable[tuple[EventContract[Any], Sequence[Mapping[str, Any]]]], base_id: str
                   ) -> dict[str, dict[str, Any]]:
    """``{relative path: document}`` for ``(contract, examples)`` pairs, sorted by path."""
    documents = {}
    for contract, examples in tasks:
        document = task_document(contract, base_id, examples)
        documents[f"{contract.exchange}/{contract.type.split('.', 1)[1]}.schema.json"] = document
    return dict(sorted(documents.items()))
