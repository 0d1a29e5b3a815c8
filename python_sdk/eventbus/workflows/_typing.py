"""Build-time type checks of a canvas, through the JSON Schemas of the contracts (no I/O).

A step's input is decided once, when the workflow is built, from the previous step's result type
(docs/workflows.md, Typing):

- no input (``"none"``): the step was given its whole payload (``Task.si``, a complete ``step``);
- ``"field"``: exactly one required field is missing and its schema accepts the result (a model
  ``R``, or after a group the list of the members' results), or ``into=`` names the field;
- ``"merge"``: the result's fields cover the missing required fields with equal JSON types, and
  the step accepts every field of the result;
- otherwise ``ConfigurationError`` naming both contracts and the field that does not fit.

Schemas are compared by their *shape*: JSON types, properties, array items, enums and formats,
with local ``$ref``s resolved and titles, descriptions and ``additionalProperties`` ignored. That
is enough to match a Python model with the generated model of the same contract in another package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .._contract import EventContract
from .._exceptions import ConfigurationError

__all__ = ["Decision", "ListResult", "Result", "decide_input", "describe"]

_KEPT = ("type", "format", "enum", "const")


@dataclass(frozen=True, slots=True)
class ListResult:
    """The result of a group: its members' results in order."""

    items: tuple[Result, ...]


Result = EventContract[Any] | ListResult | None
"""A step's result type: a contract, a group's list, or None (nothing, or not known)."""


@dataclass(frozen=True, slots=True)
class Decision:
    input: Literal["none", "merge", "field"]
    field: str | None = None


def describe(result: Result) -> str:
    if result is None:
        return "no result"
    if isinstance(result, ListResult):
        return "a list of [" + ", ".join(describe(r) for r in result.items) + "]"
    return result.type


def _resolve(schema: Any, root: Mapping[str, Any], depth: int = 0) -> Any:
    while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str) and depth < 32:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            return {"$ref": ref}  # an external schema: compared by its reference
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        schema, depth = target, depth + 1
    return schema


def shape(schema: Any, root: Mapping[str, Any], depth: int = 0) -> Any:
    """The parts of a JSON Schema that decide what JSON it accepts, as a comparable value."""
    schema = _resolve(schema, root)
    if not isinstance(schema, Mapping) or depth > 16:
        return "any"
    if "$ref" in schema:
        return ("ref", schema["$ref"])
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            options = [shape(s, root, depth + 1) for s in schema[key]]
            return ("anyOf", tuple(sorted(options, key=repr)))
    out: dict[str, Any] = {k: _freeze(schema[k]) for k in _KEPT if k in schema}
    if isinstance(schema.get("properties"), Mapping):
        out["properties"] = tuple(sorted((k, shape(v, root, depth + 1)) for k, v in schema["properties"].items()))
    if "items" in schema:
        out["items"] = shape(schema["items"], root, depth + 1)
    if not out:
        return "any"
    return tuple(sorted(out.items()))


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, Mapping):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


def _accepts(field_shape: Any, value_shape: Any) -> bool:
    if field_shape == "any" or field_shape == value_shape:
        return True
    if isinstance(field_shape, tuple) and field_shape and field_shape[0] == "anyOf":
        return any(_accepts(option, value_shape) for option in field_shape[1])
    return False


def _result_shape(result: Result) -> Any:
    if isinstance(result, ListResult):
        return None  # lists are checked item by item
    assert result is not None
    return shape(result.schema, result.schema)


def field_accepts(contract: EventContract[Any], name: str, result: Result) -> bool:
    """Whether field ``name`` of ``contract`` accepts ``result`` (a list: every item, in an array)."""
    root = contract.schema
    field_schema = _resolve(root.get("properties", {}).get(name), root)
    if field_schema is None:
        return False
    if isinstance(result, ListResult):
        options = field_schema.get("anyOf", [field_schema]) if isinstance(field_schema, Mapping) else []
        for option in options:
            option = _resolve(option, root)
            if not isinstance(option, Mapping) or option.get("type") != "array":
                continue
            items = shape(option.get("items", {}), root)
            if all(item is not None and not isinstance(item, ListResult) and _accepts(items, _result_shape(item))
                   for item in result.items):
                return True
            if all(isinstance(item, ListResult) for item in result.items) and items == "any":
                return True
        return False
    return _accepts(shape(field_schema, root), _result_shape(result))


def _properties(contract: EventContract[Any]) -> dict[str, Any]:
    props = contract.schema.get("properties", {})
    return {k: shape(v, contract.schema) for k, v in props.items()} if isinstance(props, Mapping) else {}


def _required(contract: EventContract[Any]) -> set[str]:
    required = contract.schema.get("required", [])
    return set(required) if isinstance(required, list) else set()


def decide_input(target: EventContract[Any], args: Mapping[str, Any], *, immutable: bool, into: str | None,
                 previous: Result, first: bool, where: str) -> Decision:
    """How step ``where`` (of contract ``target``) gets its input, or ``ConfigurationError`` why it cannot."""
    missing = sorted(_required(target) - args.keys())
    if immutable:
        return Decision("none")
    if first:
        if missing or into is not None:
            raise ConfigurationError(f"step {where} ({target.type}) is the first step, so it gets no input, but "
                                     f"misses {', '.join(missing) or into}: give its whole payload "
                                     "(.si or step(..., payload))")
        return Decision("none")
    if previous is None:
        raise ConfigurationError(f"step {where} ({target.type}) needs an input ({', '.join(missing) or 'merge'}) "
                                 "but the step before it has no result: annotate its return type (a model of a "
                                 "contract), give step(..., returns=) or give this step its whole payload (.si)")
    if into is not None:
        if not field_accepts(target, into, previous):
            raise ConfigurationError(f"step {where}: field {into!r} of {target.type} does not accept "
                                     f"{describe(previous)}")
        return Decision("field", into)
    if len(missing) == 1 and field_accepts(target, missing[0], previous):
        return Decision("field", missing[0])
    if isinstance(previous, ListResult):
        raise ConfigurationError(f"step {where} ({target.type}) follows a group: it needs exactly one missing "
                                 f"required field that accepts {describe(previous)}; missing: "
                                 f"{', '.join(missing) or 'none'}")
    return Decision("merge") if _merge_fits(target, previous, missing, where) else Decision("none")


def _merge_fits(target: EventContract[Any], previous: EventContract[Any], missing: list[str], where: str) -> bool:
    mine, theirs = _properties(target), _properties(previous)
    prefix = f"step {where}: the result {previous.type} does not fit {target.type}"
    for name in missing:
        if name not in theirs:
            if len(missing) == 1:
                raise ConfigurationError(f"{prefix}: field {name!r} of {target.type} does not accept "
                                         f"{previous.type}, and {previous.type} has no field {name!r}")
            raise ConfigurationError(f"{prefix}: it has no field {name!r}, which {target.type} requires")
        if not _accepts(mine[name], theirs[name]):
            raise ConfigurationError(f"{prefix}: field {name!r} has another JSON type in {previous.type} "
                                     f"than in {target.type}")
    closed = target.schema.get("additionalProperties") is False
    for name, value in theirs.items():
        if name in mine:
            if not _accepts(mine[name], value):
                raise ConfigurationError(f"{prefix}: field {name!r} has another JSON type in {previous.type} "
                                         f"than in {target.type}")
        elif closed:
            raise ConfigurationError(f"{prefix}: {target.type} has no field {name!r} (and accepts no other fields)")
    return True
