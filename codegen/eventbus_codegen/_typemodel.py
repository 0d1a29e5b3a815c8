"""JSON Schema → the language-neutral type model (``_model``): the parser stage of TS and Go codegen.

Types describe the *shape* of valid data; everything else a schema says (lengths, patterns,
ranges, ``not``, ``if``/``then``) stays with the validator, which every binding runs on the
embedded schema before it builds or after it reads a value. So a keyword is either a shape
keyword, mapped here, or a validation keyword, left to the validator. A shape with no static
type (a tuple, an enum of objects, ``allOf`` parts that disagree, recursion through an unnamed
union) becomes the closest wider type, with a ``CodegenWarning`` naming ``file#/pointer``; the
validator keeps checking what the type no longer says. The build does not fail for them.

Names: a contract's data is ``<title>V<major>``; a ``$defs`` entry of a shared document is its
key in PascalCase; anything declared inside an event contract is prefixed with the contract's
name, so adding a contract never renames another's types; anonymous nested shapes are named
after their parent and property (``CandidatesUpdatedV1Candidate``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urljoin

from ._bundle import base_uri_at, locate_ref
from ._contracts import ContractDocument, ContractSet
from ._errors import GenerationError, warn
from ._model import (
    NO_DEFAULT,
    AliasDecl,
    AnyJSON,
    ArrayOf,
    ContractTypes,
    Declaration,
    EnumDecl,
    Field,
    Literal,
    MapOf,
    Named,
    Nullable,
    ObjectDecl,
    Scalar,
    TypeExpr,
    TypeModel,
    UnionDecl,
    Variant,
    json_kind,
    value_kind,
)
from ._names import pascal_case
from ._refs import escape_pointer, resolve_pointer

__all__ = ["build_type_model", "contract_type_name"]

# Keywords that decide the shape of a value; all others only narrow which values are valid.
SHAPE_KEYWORDS = frozenset(
    {
        "$ref",
        "$dynamicRef",
        "additionalProperties",
        "allOf",
        "anyOf",
        "const",
        "enum",
        "items",
        "oneOf",
        "patternProperties",
        "prefixItems",
        "properties",
        "type",
    }
)
_SCALARS = ("string", "integer", "number", "boolean")
# Names a declaration must not take: TypeScript's global types, and what the TypeScript and Go
# runtimes of a generated package declare. A schema's "Record" or "Bus" becomes "Record2", "Bus2".
RESERVED_NAMES = frozenset({
    # TypeScript's global types
    "Array", "BigInt", "Boolean", "Date", "Error", "Function", "Map", "Number", "Object", "Partial", "Promise",
    "Readonly", "ReadonlyArray", "Record", "RegExp", "Set", "String", "Symbol", "Uint8Array",
    # what the generated TypeScript package re-exports from @eventbus/runtime (two `export *` of one
    # name would be ambiguous): checked against runtimes/typescript/src/index.ts by tests/codegen
    "AnyContract", "Attributes", "Binding", "Bus", "BusOptions", "CloudEventAttributes", "ConfigurationError",
    "ConnectionFailedError", "Contract", "ContractError", "ContractSpec", "DelayRoute", "DelayTopology",
    "EnvelopeError", "ErrorMatcher", "EventBus", "EventBusError", "EventContext", "EventContract",
    "EventValidationError", "ExchangeSpec", "Handler", "HandlerControl", "HandlerTimeoutError", "IncomingEnvelope",
    "InputLimits", "JsonValue", "Logger", "Middleware", "MiddlewareContext", "Null", "Nullable", "Of", "Options",
    "ParkMessage", "ParkOrigin", "ParkReason", "PublishError", "PublishNackedError", "PublishOptions",
    "PublishTimeoutError", "QueueSpec", "QueueType", "Retry", "RetryLater", "RetryOptions", "RetryPolicy",
    "SchemaViolation", "SubscribeOptions", "Subscription", "SubscriptionHandle", "TopologyError",
    "TopologyMismatchError", "UnroutableError", "ValidationError",
    # request-reply, workflow steps and revocations (runtime 0.2)
    "Action", "Completed", "Frame", "GroupFrame", "HandlerResult", "JoinAction", "JoinFrame", "PublishAction",
    "RedisRevocations", "RemoteTaskError", "RequestOptions", "RequestProperties", "RequestTimeoutError",
    "RevocationStore", "Slip", "SlipError", "StepFrame", "StepInfo", "StepInput", "StepResultError", "TaskResult",
    "WorkflowFailure",
})


def contract_type_name(document: ContractDocument) -> str:
    """``ConversationEndedV1``: the title plus the major version, as in the Python package."""
    return f"{document.title}V{document.event_metadata.major_version}"


@dataclass(frozen=True, slots=True)
class _At:
    """A schema node and where it is: the document it belongs to and its JSON pointer there."""

    document: ContractDocument
    pointer: str
    node: Any
    base_uri: str

    def child(self, *tokens: str | int) -> _At:
        node = self.node
        pointer = self.pointer
        for token in tokens:
            node = node[token]
            pointer += "/" + escape_pointer(str(token))
        base = self.base_uri
        if isinstance(node, dict) and isinstance(node.get("$id"), str):
            base = urljoin(base, node["$id"])
        return _At(self.document, pointer, node, base)

    @property
    def key(self) -> tuple[str, str]:
        return (self.document.schema_id, self.pointer)

    def error(self, message: str) -> GenerationError:
        return GenerationError(self.document.path, self.pointer, message)

    def widen(self, message: str) -> None:
        """Say that this schema is generated as a wider type than it means (the validator still checks it)."""
        warn(self.document.path, self.pointer, message)


def build_type_model(contracts: ContractSet) -> TypeModel:
    """The type model of every event contract in ``contracts``; ``GenerationError`` for what cannot map."""
    builder = _Builder(contracts)
    planned = []
    for document in sorted(contracts.events, key=lambda doc: doc.event_metadata.type):
        try:
            planned.append(builder.contract(document))
        except RecursionError:
            raise GenerationError(document.path, "", "the schema nests too deeply to map") from None
        except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
            # A malformed schema (a keyword holding the wrong kind of value): an error naming it, not a crash.
            message = f"cannot map this schema ({type(exc).__name__}: {exc})"
            raise GenerationError(document.path, "", message) from None
    names = [contract.title for contract in planned]
    for contract, document in zip(planned, sorted(contracts.events, key=lambda d: d.event_metadata.type), strict=True):
        if names.count(contract.title) > 1:
            raise GenerationError(document.path, "/title", f"another contract is also named {contract.title}")
    declarations = tuple(sorted(builder.declarations.values(), key=lambda decl: decl.name))
    schemas = {doc.schema_id: dict(doc.schema) for doc in contracts.documents}
    return TypeModel(tuple(planned), declarations, dict(sorted(schemas.items())))


class _Builder:
    def __init__(self, contracts: ContractSet) -> None:
        self.contracts = contracts
        self.by_id = {doc.schema_id: doc for doc in contracts.documents}
        self.names: dict[tuple[str, str], str] = {}
        self.taken: set[str] = set(RESERVED_NAMES)
        self.declarations: dict[str, Declaration] = {}
        self.resolving: set[tuple[str, str]] = set()
        self.contract_names = {
            doc.schema_id: contract_type_name(doc) for doc in contracts.events if doc.metadata is not None
        }
        self.taken.update(f"{name}Contract" for name in self.contract_names.values())

    # -- contracts -----------------------------------------------------------------------------

    def contract(self, document: ContractDocument) -> ContractTypes:
        meta = document.event_metadata
        name = contract_type_name(document)
        at = _At(document, "", document.schema, document.schema_id)
        root = self.type_of(at, name)
        if not isinstance(root, Named) or isinstance(self.declarations[root.name], EnumDecl):
            # Data that is not an object (an array, a string, an enum, any JSON): a named alias.
            name = self._name(_At(document, "#alias", None, document.schema_id), name)
            root = self._declare(AliasDecl(name, _text(document.schema.get("description")), root, _source(at)))
        examples = document.schema.get("examples")
        return ContractTypes(
            type=meta.type,
            exchange=meta.exchange,
            routing_key=meta.routing_key,
            schema_id=document.schema_id,
            title=name,
            major_version=meta.major_version,
            domain=meta.domain,
            description=_text(document.schema.get("description")),
            root=root.name,
            resources=document.reaches,
            examples=tuple(examples) if isinstance(examples, list) else (),
        )

    # -- naming --------------------------------------------------------------------------------

    def _name(self, at: _At, hint: str) -> str:
        existing = self.names.get(at.key)
        if existing is not None:
            return existing
        name = hint
        counter = 2
        while name in self.taken:
            name = f"{hint}{counter}"
            counter += 1
        self.names[at.key] = name
        self.taken.add(name)
        return name

    def _hint_for_target(self, at: _At) -> str:
        """The name a ``$ref`` target gets: its ``$defs`` key, or its document's name."""
        tokens = [unquote(t).replace("~1", "/").replace("~0", "~") for t in at.pointer.split("/")[1:]]
        owner = self.contract_names.get(at.document.schema_id, "")
        if not tokens:
            if owner:
                return owner
            return pascal_case(str(at.document.schema.get("title") or at.document.relative_path.stem))
        local = pascal_case(tokens[-1]) if not tokens[-1].isdigit() else pascal_case("".join(tokens[-2:]))
        title = at.node.get("title") if isinstance(at.node, dict) else None
        if len(tokens) == 2 and tokens[0] in ("$defs", "definitions"):
            local = pascal_case(tokens[1])
        elif isinstance(title, str) and title:
            local = pascal_case(title)
        return owner + local

    def _declare(self, declaration: Declaration) -> Named:
        self.declarations[declaration.name] = declaration
        return Named(declaration.name)

    # -- types ---------------------------------------------------------------------------------

    def type_of(self, at: _At, hint: str) -> TypeExpr:
        node = at.node
        if node is True or (isinstance(node, dict) and not (SHAPE_KEYWORDS & node.keys())):
            return AnyJSON()
        if not isinstance(node, dict):
            return AnyJSON()  # false: no value is valid, so no type is wrong; the validator refuses them all
        if "$dynamicRef" in node:
            node = {**{k: v for k, v in node.items() if k != "$dynamicRef"}, "$ref": node["$dynamicRef"]}
            at = _At(at.document, at.pointer, node, at.base_uri)
        if "$ref" in node:
            if SHAPE_KEYWORDS & (node.keys() - {"$ref"}):
                return self._all_of(at, hint, with_ref=True)
            return self._ref(at.child("$ref"), node["$ref"])
        if "allOf" in node:
            return self._all_of(at, hint, with_ref=False)
        if "oneOf" in node or "anyOf" in node:
            return self._union(at, hint)
        if "enum" in node:
            return self._enum(at, hint)
        if "const" in node:
            return self._const(at)
        return self._typed(at, hint)

    def _ref(self, ref_at: _At, ref: Any) -> TypeExpr:
        if not isinstance(ref, str):
            raise ref_at.error("$ref must be a string")
        target = self._resolve(ref_at, ref)
        if target.key in self.names:
            return Named(self.names[target.key])
        if target.key in self.resolving:
            ref_at.widen("a recursive reference through a type with no name of its own is generated as any JSON")
            return AnyJSON()
        self.resolving.add(target.key)
        try:
            return self.type_of(target, self._hint_for_target(target))
        finally:
            self.resolving.discard(target.key)

    def _resolve(self, ref_at: _At, ref: str) -> _At:
        located = locate_ref(self.contracts, urljoin(ref_at.base_uri, ref))
        if located is None:
            raise ref_at.error(f"$ref {ref!r} points at nothing loaded")
        document = self.by_id[located[0]]
        return _At(document, located[1], resolve_pointer(document.schema, located[1])[1],
                   base_uri_at(document, located[1]))

    def _typed(self, at: _At, hint: str) -> TypeExpr:
        node = at.node
        declared = node.get("type")
        if declared is None:
            if "properties" in node or "additionalProperties" in node or "patternProperties" in node:
                kinds = ["object"]
            elif "items" in node or "prefixItems" in node:
                kinds = ["array"]
            else:
                return AnyJSON()
        else:
            kinds = [declared] if isinstance(declared, str) else list(declared)
        nullable = "null" in kinds
        kinds = [kind for kind in kinds if kind != "null"]
        if "integer" in kinds and "number" in kinds:
            kinds.remove("integer")  # every integer is a number
        if not kinds:
            return Scalar("null")
        if len(kinds) > 1:
            variants = []
            for kind in kinds:
                narrowed = {**node, "type": kind}
                variant_at = _At(at.document, at.pointer, narrowed, at.base_uri)
                variants.append(Variant(self._single(variant_at, kind, f"{hint}{pascal_case(kind)}"), kind))
            union = self._declare(UnionDecl(self._name(at, hint), _text(node.get("description")),
                                            tuple(variants), None, _source(at)))
            return Nullable(union) if nullable else union
        result = self._single(at, kinds[0], hint)
        return Nullable(result) if nullable else result

    def _single(self, at: _At, kind: str, hint: str) -> TypeExpr:
        node = at.node
        if kind == "object":
            return self._object(at, hint)
        if kind == "array":
            if "prefixItems" in node or isinstance(node.get("items"), list):
                at.widen("a tuple (prefixItems / an items array) is generated as an array of any JSON")
                return ArrayOf(AnyJSON())
            items = node.get("items", True)
            if items is True or items == {}:
                return ArrayOf(AnyJSON())
            return ArrayOf(self.type_of(at.child("items"), f"{hint}Item"))
        if kind in _SCALARS:
            fmt = node.get("format")
            return Scalar(kind, fmt if isinstance(fmt, str) else None)
        at.widen(f"unknown type {kind!r} is generated as any JSON")
        return AnyJSON()

    def _object(self, at: _At, hint: str) -> TypeExpr:
        node = at.node
        properties = node.get("properties") or {}
        additional = node.get("additionalProperties", True)
        if node.get("unevaluatedProperties") is False:
            additional = False
        if not properties:
            if "patternProperties" in node or additional is True or additional == {}:
                return MapOf(AnyJSON())
            if additional is not False:
                return MapOf(self.type_of(at.child("additionalProperties"), f"{hint}Value"))
        if at.key in self.names:
            return Named(self.names[at.key])
        name = self._name(at, hint)
        self.declarations[name] = ObjectDecl(name, None, (), None, _source(at))  # placeholder for recursion
        required = set(node.get("required") or ())
        fields = []
        for prop, schema in properties.items():
            if schema is False:
                continue  # the property must be absent: nothing to hold it
            prop_at = at.child("properties", prop)
            field_type = self.type_of(prop_at, name + pascal_case(prop))
            fields.append(_field(prop, prop_at, field_type, prop in required))
        if "patternProperties" in node or additional is True or additional == {}:
            extra: TypeExpr | None = AnyJSON()
        elif additional is False:
            extra = None
        else:
            extra = self.type_of(at.child("additionalProperties"), f"{name}Value")
        return self._declare(ObjectDecl(name, _text(node.get("description")), tuple(fields), extra, _source(at)))

    def _enum(self, at: _At, hint: str) -> TypeExpr:
        values = at.node["enum"]
        if not isinstance(values, list) or not values:
            raise at.error("enum must be a non-empty array")
        nullable = None in values
        rest = [value for value in values if value is not None]
        if not rest:
            return Scalar("null")
        groups: dict[str, list[Any]] = {}
        for value in rest:
            groups.setdefault(value_kind(value), []).append(value)
        result: TypeExpr
        if len(groups) > 1:
            result = self._mixed_enum(at, hint, groups)
        elif all(isinstance(v, bool) for v in rest):
            result = Literal(rest[0]) if len(rest) == 1 else Scalar("boolean")
        elif len(rest) == 1 and isinstance(rest[0], str | int | float):
            result = Literal(rest[0])
        elif all(isinstance(v, str) for v in rest):
            result = self._declare(EnumDecl(self._name(at, hint), _text(at.node.get("description")), "string",
                                            tuple(rest), _source(at)))
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in rest):
            result = self._declare(EnumDecl(self._name(at, hint), _text(at.node.get("description")), "integer",
                                            tuple(rest), _source(at)))
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in rest):
            result = Scalar("number")
        else:
            at.widen("an enum of objects or arrays is generated as any JSON")
            result = AnyJSON()
        return Nullable(result) if nullable else result

    def _mixed_enum(self, at: _At, hint: str, groups: dict[str, list[Any]]) -> TypeExpr:
        """An enum mixing kinds of values: a union by kind of one enum (or literal) per kind."""
        if "object" in groups or "array" in groups:
            at.widen("an enum holding objects or arrays is generated as any JSON")
            return AnyJSON()
        if "integer" in groups and "number" in groups:
            groups["number"] += groups.pop("integer")
        variants = []
        for kind, values in groups.items():
            narrowed = _At(at.document, f"{at.pointer}#{kind}", {"enum": values}, at.base_uri)
            expr = self._enum(narrowed, hint + pascal_case(kind))
            variants.append(Variant(expr, kind))
        return self._declare(UnionDecl(self._name(at, hint), _text(at.node.get("description")), tuple(variants),
                                       None, _source(at)))

    def _const(self, at: _At) -> TypeExpr:
        value = at.node["const"]
        if value is None:
            return Scalar("null")
        if isinstance(value, str | int | float | bool):
            return Literal(value)
        return AnyJSON()  # a constant object or array: the validator pins it, the type keeps it as JSON

    def _union(self, at: _At, hint: str) -> TypeExpr:
        node = at.node
        if "oneOf" in node and "anyOf" in node:
            at.widen("oneOf beside anyOf: the type follows oneOf, the validator checks both")
            node = {k: v for k, v in node.items() if k != "anyOf"}
            at = _At(at.document, at.pointer, node, at.base_uri)
        keyword = "oneOf" if "oneOf" in node else "anyOf"
        branches = node[keyword]
        if not isinstance(branches, list) or not branches:
            raise at.error(f"{keyword} must be a non-empty array")
        others = SHAPE_KEYWORDS & (node.keys() - {keyword, "type"})
        if all(isinstance(b, dict) and not (SHAPE_KEYWORDS & b.keys()) for b in branches):
            # Branches that only narrow (e.g. required one of two properties): the shape is the rest.
            rest = {k: v for k, v in node.items() if k != keyword}
            return self.type_of(_At(at.document, at.pointer, rest, at.base_uri), hint)
        if others:
            # Keywords beside the branches apply to each of them: merge them into every branch.
            rest = {k: v for k, v in node.items() if k not in (keyword, "description", "title")}
            merged = [branch if _is_null_schema(branch) else {"allOf": [rest, branch]} for branch in branches]
            node = {keyword: merged, **({"description": node["description"]} if "description" in node else {})}
            at = _At(at.document, at.pointer, node, at.base_uri)
            branches = merged
        if at.key in self.names:
            return Named(self.names[at.key])
        nullable = False
        variants: list[TypeExpr] = []
        for index, branch in enumerate(branches):
            branch_at = at.child(keyword, index)
            if _is_null_schema(branch):
                nullable = True
                continue
            title = branch.get("title") if isinstance(branch, dict) else None
            branch_hint = hint + (pascal_case(title) if isinstance(title, str) and title else f"Option{index + 1}")
            expr = self.type_of(branch_at, branch_hint)
            if isinstance(expr, Nullable):
                nullable, expr = True, expr.inner
            if expr not in variants:
                variants.append(expr)
        if not variants:
            return Scalar("null")
        if len(variants) == 1:
            result = variants[0]
        elif any(isinstance(v, AnyJSON) for v in variants):
            result = AnyJSON()
        else:
            result = self._declare(self._union_decl(at, hint, variants))
        return Nullable(result) if nullable else result

    def _union_decl(self, at: _At, hint: str, variants: list[TypeExpr]) -> UnionDecl:
        name = self._name(at, hint)
        kinds = [json_kind(v, self.declarations) for v in variants]
        discriminator = self._discriminator(variants) if all(k == "object" for k in kinds) else None
        built = []
        for variant, kind in zip(variants, kinds, strict=True):
            tag = None
            if discriminator is not None:
                tag = str(self._tag_of(variant, discriminator))
            built.append(Variant(variant, kind, tag))
        return UnionDecl(name, _text(at.node.get("description")), tuple(built), discriminator, _source(at))

    def _object_fields(self, expr: TypeExpr) -> tuple[Field, ...] | None:
        if isinstance(expr, Named):
            declaration = self.declarations.get(expr.name)
            if isinstance(declaration, ObjectDecl):
                return declaration.fields
        return None

    def _discriminator(self, variants: list[TypeExpr]) -> str | None:
        field_sets = [self._object_fields(v) for v in variants]
        if any(fields is None for fields in field_sets):
            return None
        first = field_sets[0] or ()
        for candidate in first:
            values = []
            for fields in field_sets:
                match = next((f for f in fields or () if f.json_name == candidate.json_name), None)
                if match is None or not match.required or not isinstance(match.type, Literal):
                    break
                if not isinstance(match.type.value, str):
                    break
                values.append(match.type.value)
            else:
                if len(set(values)) == len(values):
                    return candidate.json_name
        return None

    def _tag_of(self, variant: TypeExpr, discriminator: str) -> str | int | float | bool:
        for field in self._object_fields(variant) or ():
            if field.json_name == discriminator and isinstance(field.type, Literal):
                return field.type.value
        raise AssertionError("discriminator checked before")

    def _all_of(self, at: _At, hint: str, *, with_ref: bool) -> TypeExpr:
        """``allOf`` (or ``$ref`` beside shape keywords, which means the same): merge object parts."""
        node = at.node
        parts: list[_At] = []
        rest = {k: v for k, v in node.items() if k not in ("allOf", "$ref")}
        if with_ref:
            parts.append(self._resolve(at.child("$ref"), node["$ref"]))
        if "allOf" in node:
            if not isinstance(node["allOf"], list):
                raise at.error("allOf must be an array")
            parts.extend(at.child("allOf", index) for index in range(len(node["allOf"])))
        if SHAPE_KEYWORDS & rest.keys():
            parts.append(_At(at.document, at.pointer, rest, at.base_uri))
        flat = [part for part in self._flatten(parts) if SHAPE_KEYWORDS & _keys(part.node)]
        if not flat:
            return AnyJSON()
        if len(flat) == 1:
            return self.type_of(flat[0], hint)
        objects = [part for part in flat if _is_object_schema(part.node)]
        closed = True
        if len(objects) < len(flat):
            if not objects:
                return self._all_of_values(at, hint, flat)
            at.widen("allOf parts that are not plain objects are left to the validator; "
                     "the merged object keeps the properties it does not name")
            flat, closed = objects, False
        if at.key in self.names:
            return Named(self.names[at.key])
        name = self._name(at, hint)
        self.declarations[name] = ObjectDecl(name, None, (), None, _source(at))
        fields: dict[str, Field] = {}
        required: set[str] = set()
        extra: TypeExpr | None = AnyJSON()
        for part in flat:
            required.update(part.node.get("required") or ())
            for prop, schema in (part.node.get("properties") or {}).items():
                if schema is False:
                    continue
                prop_at = part.child("properties", prop)
                field_type = self.type_of(prop_at, name + pascal_case(prop))
                previous = fields.get(prop)
                if previous is not None and not _compatible(previous.type, field_type, self.declarations):
                    prop_at.widen(f"allOf parts give property {prop!r} types that do not agree: any JSON")
                    fields[prop] = _field(prop, prop_at, AnyJSON(), False)
                elif previous is None or not isinstance(field_type, AnyJSON):
                    fields[prop] = _field(prop, prop_at, field_type, False)
            closes = part.node.get("additionalProperties") is False or part.node.get("unevaluatedProperties") is False
            if closes and closed:
                extra = None
        merged = tuple(
            Field(f.json_name, f.type, f.json_name in required, f.description, f.default) for f in fields.values()
        )
        return self._declare(ObjectDecl(name, _text(node.get("description")), merged, extra, _source(at)))

    def _all_of_values(self, at: _At, hint: str, parts: list[_At]) -> TypeExpr:
        """``allOf`` of parts that are not objects: one schema of their keywords when they narrow one kind."""
        kinds = {_declared_kind(part.node) for part in parts} - {None}
        if len(kinds) <= 1 and len({(part.document.schema_id, part.base_uri) for part in parts}) == 1:
            merged: dict[str, Any] = {}
            for part in parts:
                merged.update(part.node)
            return self.type_of(_At(at.document, at.pointer, merged, at.base_uri), hint)
        shaped = next((part for part in parts if _declared_kind(part.node) is not None), parts[0])
        at.widen("allOf parts of different kinds (or from different documents): the type follows "
                 f"{_source(shaped)}, the validator checks them all")
        return self.type_of(shaped, hint)

    def _flatten(self, parts: list[_At]) -> list[_At]:
        """Follow pure ``$ref`` parts and nested ``allOf`` so merging sees the object schemas themselves."""
        flat: list[_At] = []
        for part in parts:
            node = part.node
            if isinstance(node, dict) and "$ref" in node and not (SHAPE_KEYWORDS & (node.keys() - {"$ref"})):
                flat.extend(self._flatten([self._resolve(part.child("$ref"), node["$ref"])]))
            elif isinstance(node, dict) and "allOf" in node and not (SHAPE_KEYWORDS & (node.keys() - {"allOf"})):
                flat.extend(self._flatten([part.child("allOf", i) for i in range(len(node["allOf"]))]))
            else:
                flat.append(part)
        return flat


def _field(prop: str, prop_at: _At, field_type: TypeExpr, required: bool) -> Field:
    node = prop_at.node if isinstance(prop_at.node, dict) else {}
    return Field(prop, field_type, required, _text(node.get("description")), node.get("default", NO_DEFAULT))


def _compatible(old: TypeExpr, new: TypeExpr, declarations: Mapping[str, Declaration]) -> bool:
    if isinstance(old, AnyJSON) or isinstance(new, AnyJSON) or old == new:
        return True
    null = Scalar("null")
    if (new == null and isinstance(old, Nullable)) or (old == null and isinstance(new, Nullable)):
        return True  # one part narrows "X or null" to null (or widens null to "X or null"): same values
    old_inner = old.inner if isinstance(old, Nullable) else old
    new_inner = new.inner if isinstance(new, Nullable) else new
    return json_kind(old_inner, dict(declarations)) == json_kind(new_inner, dict(declarations))


def _is_null_schema(node: Any) -> bool:
    if not isinstance(node, dict):
        return False
    return node.get("type") == "null" or ("const" in node and node["const"] is None) or node.get("enum") == [None]


def _declared_kind(node: Any) -> str | None:
    kind = node.get("type") if isinstance(node, dict) else None
    if isinstance(kind, str):
        return kind
    if isinstance(kind, list):
        return "/".join(sorted(kind))
    return None


def _is_object_schema(node: Any) -> bool:
    if not isinstance(node, dict):
        return False
    kind = node.get("type")
    return kind == "object" or (kind is None and ("properties" in node or "required" in node))


def _keys(node: Any) -> set[str]:
    return set(node) if isinstance(node, dict) else set()


def _source(at: _At) -> str:
    return f"{at.document.relative_path}#{at.pointer}"


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None
