"""Two versions of one contract schema, compared keyword by keyword: each difference a ``Change``.

The walk reads both schemas as a validator does, ``$ref`` followed (so a change in
``common/`` shows up in every contract that reaches it, and moving a definition without changing
it changes nothing), and decides for each difference whether the new schema accepts fewer events
(it can break consumers), more (it can break producers) or some of each. Where that cannot be
decided cheaply (two regular expressions, ``if``/``then``) the verdict is "both": a false alarm
costs a look, a missed break costs a production incident.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from eventbus_codegen._refs import escape_pointer

from .._schema_index import SchemaIndex, SchemaNode
from ._rules import BOTH, CONSUMERS, NEITHER, PRODUCERS, rule

__all__ = ["Change", "SchemaDiff"]

_ANNOTATIONS = frozenset({
    "$anchor", "$comment", "$defs", "$dynamicAnchor", "$id", "$schema", "$vocabulary", "default", "definitions",
    "deprecated", "description", "examples", "readOnly", "title", "writeOnly",
})
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties", "minContains")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties", "maxContains")
_COMPOSITIONS = {"oneOf": "ONEOF", "anyOf": "ANYOF", "allOf": "ALLOF"}
_HANDLED = frozenset({
    "type", "enum", "const", "properties", "required", "additionalProperties", "propertyNames", "items",
    "prefixItems", "uniqueItems", "multipleOf", "pattern", "format", "not", *_LOWER_BOUNDS, *_UPPER_BOUNDS,
    *_COMPOSITIONS,
})

Keywords = Mapping[str, SchemaNode]


@dataclass(frozen=True, slots=True)
class Change:
    """One difference: its rule, the JSON pointer in the contract (through ``$ref``), whom it can break."""

    rule: str
    path: str
    message: str
    effect: frozenset[str]
    where: SchemaNode


class SchemaDiff:
    """Compares subschemas of the tree at the ref (``before``) with the working tree (``after``)."""

    def __init__(self, before: SchemaIndex, after: SchemaIndex) -> None:
        self.before = before
        self.after = after
        self._changes: list[Change] = []

    def compare(self, old: SchemaNode, new: SchemaNode) -> list[Change]:
        self._changes = []
        self._walk(old, new, "", False, frozenset())
        return self._changes

    # -- the walk ---------------------------------------------------------------------------------

    def _walk(self, old: SchemaNode, new: SchemaNode, path: str, flipped: bool, seen: frozenset[str]) -> None:
        visit = f"{old.address} {new.address}"
        if visit in seen:
            return  # a recursive schema: this pair is being compared further up
        seen = seen | {visit}
        old_uri, new_uri = self.before.target_uri(old), self.after.target_uri(new)
        if old_uri and new_uri and old_uri != new_uri:
            self._emit("REF_TARGET_CHANGED", path, f"$ref now names {_short(new_uri)} instead of {_short(old_uri)}",
                       new.child("$ref"), flipped)
        before, after = self.before.keywords(old), self.after.keywords(new)
        if isinstance(before, bool) or isinstance(after, bool):
            if before is False and after is not False:
                self._emit("TYPE_WIDENED", path, "accepted nothing (false), now accepts values", new, flipped)
                return
            if after is False and before is not False:
                self._emit("TYPE_NARROWED", path, "now accepts nothing (false)", new, flipped)
                return
            before = {} if isinstance(before, bool) else before
            after = {} if isinstance(after, bool) else after
        ctx = _Pair(before, after, path, new, flipped, seen)
        self._types(ctx)
        self._enum_and_const(ctx)
        self._object(ctx)
        self._array(ctx)
        self._bounds(ctx)
        self._text(ctx, "pattern", "PATTERN")
        self._text(ctx, "format", "FORMAT")
        for keyword, prefix in _COMPOSITIONS.items():
            self._composition(ctx, keyword, prefix)
        self._negation(ctx)
        self._other_keywords(ctx)

    def _emit(self, rule_id: str, path: str, message: str, where: SchemaNode, flipped: bool,
              effect: frozenset[str] | None = None) -> None:
        effect = rule(rule_id).effect if effect is None else effect
        if flipped and effect in (CONSUMERS, PRODUCERS):
            effect = PRODUCERS if effect == CONSUMERS else CONSUMERS
        self._changes.append(Change(rule_id, path or "/", message, effect, where))

    # -- keyword groups -----------------------------------------------------------------------------

    def _types(self, ctx: _Pair) -> None:
        old, new = _type_set(ctx.old("type")), _type_set(ctx.new("type"))
        if old == new:
            return
        where = ctx.where("type")
        if old is None:
            self._emit("TYPE_NARROWED", ctx.path_to("type"), f"type {_types(new)} added where any was accepted",
                       where, ctx.flipped)
            return
        if new is None:
            self._emit("TYPE_WIDENED", ctx.path_to("type"), f"type {_types(old)} dropped: any type accepted",
                       where, ctx.flipped)
            return
        narrowed, widened = _covers(old, new), _covers(new, old)
        message = f"type {_types(old)} became {_types(new)}"
        if narrowed and not widened:
            self._emit("TYPE_NARROWED", ctx.path_to("type"), message, where, ctx.flipped)
        elif widened and not narrowed:
            self._emit("TYPE_WIDENED", ctx.path_to("type"), message, where, ctx.flipped)
        elif not narrowed and not widened:
            self._emit("TYPE_CHANGED", ctx.path_to("type"), message, where, ctx.flipped)

    def _enum_and_const(self, ctx: _Pair) -> None:
        old, new = ctx.old("enum"), ctx.new("enum")
        if isinstance(old, list) and isinstance(new, list):
            old_values, new_values = {_canonical(v): v for v in old}, {_canonical(v): v for v in new}
            for key in sorted(new_values.keys() - old_values.keys()):
                self._emit("ENUM_VALUE_ADDED", ctx.path_to("enum"), f"enum value {new_values[key]!r} added",
                           ctx.where("enum"), ctx.flipped)
            for key in sorted(old_values.keys() - new_values.keys()):
                self._emit("ENUM_VALUE_REMOVED", ctx.path_to("enum"), f"enum value {old_values[key]!r} removed",
                           ctx.where("enum"), ctx.flipped)
        elif isinstance(new, list) and old is None:
            self._emit("ENUM_ADDED", ctx.path_to("enum"), f"now restricted to {new!r}", ctx.where("enum"), ctx.flipped)
        elif isinstance(old, list) and new is None:
            self._emit("ENUM_REMOVED", ctx.path_to("enum"), f"no longer restricted to {old!r}", ctx.where("enum"),
                       ctx.flipped)
        old_has, new_has = ctx.has_old("const"), ctx.has_new("const")
        old_const, new_const = ctx.old("const"), ctx.new("const")
        if old_has and new_has and _canonical(old_const) != _canonical(new_const):
            self._emit("CONST_CHANGED", ctx.path_to("const"), f"const {old_const!r} became {new_const!r}",
                       ctx.where("const"), ctx.flipped)
        elif new_has and not old_has:
            self._emit("CONST_ADDED", ctx.path_to("const"), f"now pinned to {new_const!r}", ctx.where("const"),
                       ctx.flipped)
        elif old_has and not new_has:
            self._emit("CONST_REMOVED", ctx.path_to("const"), f"no longer pinned to {old_const!r}",
                       ctx.where("const"), ctx.flipped)

    def _object(self, ctx: _Pair) -> None:
        old_props, new_props = ctx.old_nodes("properties"), ctx.new_nodes("properties")
        old_open, new_open = _openness(ctx.old("additionalProperties", True)), _openness(
            ctx.new("additionalProperties", True))
        for name in sorted(old_props.keys() | new_props.keys()):
            path = f"{ctx.path_to('properties')}/{escape_pointer(name)}"
            if name in old_props and name in new_props:
                self._walk(old_props[name], new_props[name], path, ctx.flipped, ctx.seen)
            elif name in new_props:
                effect = _field_effect(old_open, new_props[name], ctx.before.get("additionalProperties"),
                                       closed=PRODUCERS, open_=CONSUMERS)
                self._emit("FIELD_ADDED", path, f"field {name!r} added to {_object_kind(old_open)}",
                           new_props[name], ctx.flipped, effect)
            else:
                effect = _field_effect(new_open, old_props[name], ctx.after.get("additionalProperties"),
                                       closed=CONSUMERS, open_=PRODUCERS)
                self._emit("FIELD_REMOVED", path, f"field {name!r} removed from {_object_kind(new_open)}",
                           ctx.where("properties"), ctx.flipped, effect)
        old_required, new_required = set(ctx.old("required", [])), set(ctx.new("required", []))
        for name in sorted(new_required - old_required):
            self._emit("REQUIRED_ADDED", ctx.path_to("required"), f"field {name!r} is now required",
                       ctx.where("required"), ctx.flipped)
        for name in sorted(old_required - new_required):
            self._emit("REQUIRED_REMOVED", ctx.path_to("required"), f"field {name!r} is no longer required",
                       ctx.where("required"), ctx.flipped)
        path = ctx.path_to("additionalProperties")
        where = ctx.where("additionalProperties")
        if old_open != "closed" and new_open == "closed":
            self._emit("ADDITIONAL_PROPERTIES_CLOSED", path, "additionalProperties is now false", where, ctx.flipped)
        elif old_open == "closed" and new_open != "closed":
            self._emit("ADDITIONAL_PROPERTIES_OPENED", path, "additionalProperties is no longer false", where,
                       ctx.flipped)
        elif "schema" in (old_open, new_open):
            self._walk(ctx.subschema_old("additionalProperties"), ctx.subschema_new("additionalProperties"), path,
                       ctx.flipped, ctx.seen)
        if ctx.has_old("propertyNames") or ctx.has_new("propertyNames"):
            self._walk(ctx.subschema_old("propertyNames"), ctx.subschema_new("propertyNames"),
                       ctx.path_to("propertyNames"), ctx.flipped, ctx.seen)

    def _array(self, ctx: _Pair) -> None:
        if ctx.has_old("items") or ctx.has_new("items"):
            self._walk(ctx.subschema_old("items"), ctx.subschema_new("items"), ctx.path_to("items"), ctx.flipped,
                       ctx.seen)
        old_prefix, new_prefix = ctx.old("prefixItems", []), ctx.new("prefixItems", [])
        if len(old_prefix) != len(new_prefix):
            self._emit("KEYWORD_CHANGED", ctx.path_to("prefixItems"),
                       f"prefixItems has {len(new_prefix)} positions instead of {len(old_prefix)}",
                       ctx.where("prefixItems"), ctx.flipped)
        elif old_prefix:
            for index in range(len(old_prefix)):
                self._walk(ctx.before["prefixItems"].child(index), ctx.after["prefixItems"].child(index),
                           f"{ctx.path_to('prefixItems')}/{index}", ctx.flipped, ctx.seen)
        old_unique, new_unique = bool(ctx.old("uniqueItems", False)), bool(ctx.new("uniqueItems", False))
        if old_unique != new_unique:
            rule_id = "BOUND_TIGHTENED" if new_unique else "BOUND_LOOSENED"
            self._emit(rule_id, ctx.path_to("uniqueItems"), f"uniqueItems is now {str(new_unique).lower()}",
                       ctx.where("uniqueItems"), ctx.flipped)

    def _bounds(self, ctx: _Pair) -> None:
        for keyword in (*_LOWER_BOUNDS, *_UPPER_BOUNDS):
            old, new = ctx.old(keyword), ctx.new(keyword)
            if old == new or not _numbers(old, new):
                continue
            if old is None:
                tighter = True
            elif new is None:
                tighter = False
            else:
                tighter = new > old if keyword in _LOWER_BOUNDS else new < old
            rule_id = "BOUND_TIGHTENED" if tighter else "BOUND_LOOSENED"
            self._emit(rule_id, ctx.path_to(keyword), f"{keyword} {_bound(old)} became {_bound(new)}",
                       ctx.where(keyword), ctx.flipped)
        old, new = ctx.old("multipleOf"), ctx.new("multipleOf")
        if old != new and _numbers(old, new):
            # Multiples of 6 are multiples of 3: 3 → 6 tightens, 6 → 3 loosens, 4 → 6 does some of each.
            ratio = None if old is None or new is None else Fraction(str(new)) / Fraction(str(old))
            effect = None
            if old is None or (ratio is not None and ratio.denominator == 1):
                rule_id = "BOUND_TIGHTENED"
            elif new is None or (ratio is not None and ratio.numerator == 1):
                rule_id = "BOUND_LOOSENED"
            else:
                rule_id, effect = "BOUND_TIGHTENED", BOTH
            self._emit(rule_id, ctx.path_to("multipleOf"), f"multipleOf {_bound(old)} became {_bound(new)}",
                       ctx.where("multipleOf"), ctx.flipped, effect)

    def _text(self, ctx: _Pair, keyword: str, prefix: str) -> None:
        old, new = ctx.old(keyword), ctx.new(keyword)
        if old == new:
            return
        if old is None:
            rule_id, message = f"{prefix}_ADDED", f"{keyword} {new!r} added"
        elif new is None:
            rule_id, message = f"{prefix}_REMOVED", f"{keyword} {old!r} removed"
        else:
            rule_id, message = f"{prefix}_CHANGED", f"{keyword} {old!r} became {new!r}"
        self._emit(rule_id, ctx.path_to(keyword), message, ctx.where(keyword), ctx.flipped)

    def _composition(self, ctx: _Pair, keyword: str, prefix: str) -> None:
        if not ctx.has_old(keyword) and not ctx.has_new(keyword):
            return
        old = _branches(ctx.before.get(keyword))
        new = _branches(ctx.after.get(keyword))
        path = ctx.path_to(keyword)
        if keyword != "allOf" and (not old or not new):
            # Introducing or dropping a oneOf/anyOf changes what is accepted in ways a branch count cannot say.
            self._emit("KEYWORD_CHANGED", path, f"{keyword} {'added' if new else 'removed'}", ctx.where(keyword),
                       ctx.flipped)
            return
        unmatched_old = list(old)
        unmatched_new = []
        for branch in new:
            twin = next((b for b in unmatched_old if _canonical(b.value) == _canonical(branch.value)), None)
            if twin is None:
                unmatched_new.append(branch)
            else:
                unmatched_old.remove(twin)
                self._walk(twin, branch, f"{path}/{branch.pointer.rpartition('/')[2]}", ctx.flipped, ctx.seen)
        if len(unmatched_old) == len(unmatched_new):
            for before, after in zip(unmatched_old, unmatched_new, strict=True):
                self._walk(before, after, f"{path}/{after.pointer.rpartition('/')[2]}", ctx.flipped, ctx.seen)
            return
        for branch in unmatched_new:
            self._emit(f"{prefix}_BRANCH_ADDED", f"{path}/{branch.pointer.rpartition('/')[2]}",
                       f"{keyword} branch {_canonical(branch.value)} added", branch, ctx.flipped)
        for branch in unmatched_old:
            self._emit(f"{prefix}_BRANCH_REMOVED", f"{path}/{branch.pointer.rpartition('/')[2]}",
                       f"{keyword} branch {_canonical(branch.value)} removed", ctx.where(keyword), ctx.flipped)

    def _negation(self, ctx: _Pair) -> None:
        if ctx.has_old("not") and ctx.has_new("not"):
            # What `not` accepts is what its subschema rejects: narrowing inside widens outside.
            self._walk(ctx.before["not"], ctx.after["not"], ctx.path_to("not"), not ctx.flipped, ctx.seen)
        elif ctx.has_old("not") or ctx.has_new("not"):
            self._emit("KEYWORD_CHANGED", ctx.path_to("not"), f"not {'added' if ctx.has_new('not') else 'removed'}",
                       ctx.where("not"), ctx.flipped)

    def _other_keywords(self, ctx: _Pair) -> None:
        for keyword in sorted(ctx.before.keys() | ctx.after.keys()):
            if keyword in _HANDLED or keyword in _ANNOTATIONS or keyword.startswith("x-"):
                continue
            old, new = ctx.old(keyword), ctx.new(keyword)
            if _canonical(old) != _canonical(new):
                self._emit("KEYWORD_CHANGED", ctx.path_to(keyword), f"{keyword} changed", ctx.where(keyword),
                           ctx.flipped)


@dataclass(frozen=True, slots=True)
class _Pair:
    """The keywords of one subschema in both versions, and where findings about them point."""

    before: Keywords
    after: Keywords
    path: str
    new_node: SchemaNode
    flipped: bool
    seen: frozenset[str]

    def has_old(self, keyword: str) -> bool:
        return keyword in self.before

    def has_new(self, keyword: str) -> bool:
        return keyword in self.after

    def old(self, keyword: str, default: Any = None) -> Any:
        return self.before[keyword].value if keyword in self.before else default

    def new(self, keyword: str, default: Any = None) -> Any:
        return self.after[keyword].value if keyword in self.after else default

    def old_nodes(self, keyword: str) -> dict[str, SchemaNode]:
        return _members(self.before.get(keyword))

    def new_nodes(self, keyword: str) -> dict[str, SchemaNode]:
        return _members(self.after.get(keyword))

    def subschema_old(self, keyword: str) -> SchemaNode:
        """The keyword's subschema, or ``true`` (accept anything) where it is absent."""
        if keyword in self.before:
            return self.before[keyword]
        return SchemaNode(self.new_node.doc, f"{self.new_node.pointer}/{keyword}", True)

    def subschema_new(self, keyword: str) -> SchemaNode:
        return self.after[keyword] if keyword in self.after else SchemaNode(
            self.new_node.doc, f"{self.new_node.pointer}/{keyword}", True)

    def where(self, keyword: str) -> SchemaNode:
        return self.after.get(keyword, self.new_node)

    def path_to(self, keyword: str) -> str:
        return f"{self.path}/{keyword}"


def _members(node: SchemaNode | None) -> dict[str, SchemaNode]:
    if node is None or not isinstance(node.value, dict):
        return {}
    return {name: node.child(name) for name in node.value}


def _branches(node: SchemaNode | None) -> list[SchemaNode]:
    if node is None or not isinstance(node.value, list):
        return []
    return [node.child(index) for index in range(len(node.value))]


def _type_set(value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    return frozenset(value) if isinstance(value, list) else frozenset({value})


def _covers(wide: frozenset[str], narrow: frozenset[str]) -> bool:
    """Whether every value of a type in ``narrow`` has a type in ``wide`` (integers are numbers)."""
    return all(t in wide or (t == "integer" and "number" in wide) for t in narrow)


def _types(types: frozenset[str] | None) -> str:
    return "any" if types is None else "|".join(sorted(types))


def _openness(value: Any) -> str:
    if value is False:
        return "closed"
    if value is True or value == {}:
        return "open"
    return "schema"


def _field_effect(openness: str, field: SchemaNode, extra: SchemaNode | None, *, closed: frozenset[str],
                  open_: frozenset[str]) -> frozenset[str]:
    """Whom a field appearing or disappearing breaks, given what the object does with unlisted fields.

    Closed: the field was (or is now) rejected outright. Open: it was (or is now) anything. A map
    (``additionalProperties`` a schema): nothing changes when the field's schema is the map's, and
    otherwise values may move either way.
    """
    if openness == "closed":
        return closed
    if openness == "open":
        return open_
    same = extra is not None and _canonical(extra.value) == _canonical(field.value)
    return NEITHER if same else BOTH


def _object_kind(openness: str) -> str:
    return {"closed": "a closed object", "open": "an open object"}.get(openness, "an object whose "
                                                                                  "additionalProperties is a schema")


def _numbers(*values: Any) -> bool:
    return all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values)


def _bound(value: Any) -> str:
    return "(none)" if value is None else str(value)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _short(uri: str) -> str:
    """``common/user.schema.json#/$defs/UserId`` out of the full URI, for messages."""
    document, _, fragment = uri.partition("#")
    tail = "/".join(document.split("/")[-2:])
    return f"{tail}#{fragment}" if fragment else tail
