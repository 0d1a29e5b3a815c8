"""The language-neutral type model every non-Python generator renders from.

``build_type_model`` (in ``_typemodel``) reads the contracts into these values; the TypeScript
and Go generators only decide how each kind of type is spelled in their language. Keeping the
decisions about JSON Schema in one place is what makes the bindings agree: a field optional in
TypeScript is optional in Go, a tagged union in one is a tagged union in the other.

Type expressions (what a field, an array item or a map value is)::

    Scalar(kind, format)     string / integer / number / boolean / null, with the JSON Schema format
    Literal(value)           const: exactly one string, number or boolean
    AnyJSON()                any JSON value: {} or true in the schema, or shapes typed elsewhere
    Nullable(inner)          inner or null: ["string", "null"], anyOf [X, {type: null}], enum [.., null]
    ArrayOf(items)           type: array
    MapOf(values)            an object with only additionalProperties (string keys)
    Named(name)              a declaration below

Declarations (what gets a name in the generated code)::

    ObjectDecl               properties, each required or optional; ``extra`` says what other keys may hold
    EnumDecl                 enum of strings or of integers
    UnionDecl                oneOf/anyOf: tagged (discriminator property), by JSON kind, or opaque
    AliasDecl                a contract's data that is not an object: a name for any type expression
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "NO_DEFAULT",
    "AliasDecl",
    "AnyJSON",
    "ArrayOf",
    "ContractTypes",
    "Declaration",
    "EnumDecl",
    "Field",
    "Literal",
    "MapOf",
    "Named",
    "Nullable",
    "ObjectDecl",
    "Scalar",
    "TypeExpr",
    "TypeModel",
    "UnionDecl",
    "Variant",
    "json_kind",
    "value_kind",
]


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()


@dataclass(frozen=True, slots=True)
class Scalar:
    kind: str  # "string", "integer", "number", "boolean", "null"
    format: str | None = None


@dataclass(frozen=True, slots=True)
class Literal:
    value: str | int | float | bool


@dataclass(frozen=True, slots=True)
class AnyJSON:
    pass


@dataclass(frozen=True, slots=True)
class Nullable:
    inner: TypeExpr


@dataclass(frozen=True, slots=True)
class ArrayOf:
    items: TypeExpr


@dataclass(frozen=True, slots=True)
class MapOf:
    values: TypeExpr


@dataclass(frozen=True, slots=True)
class Named:
    name: str


TypeExpr = Scalar | Literal | AnyJSON | Nullable | ArrayOf | MapOf | Named


@dataclass(frozen=True, slots=True)
class Field:
    """One property of an object: its JSON name, its type, and whether it must be present."""

    json_name: str
    type: TypeExpr
    required: bool
    description: str | None = None
    default: Any = NO_DEFAULT

    @property
    def nullable(self) -> bool:
        return isinstance(self.type, Nullable)


@dataclass(frozen=True, slots=True)
class ObjectDecl:
    """An object with known properties.

    ``extra`` is ``None`` when the schema forbids other keys (``additionalProperties: false``),
    else the type other keys hold (``AnyJSON()`` for an open object), so generated code can keep
    them instead of silently dropping them.
    """

    name: str
    description: str | None
    fields: tuple[Field, ...]
    extra: TypeExpr | None
    source: str  # file#/pointer it came from, for error messages and doc comments


@dataclass(frozen=True, slots=True)
class EnumDecl:
    name: str
    description: str | None
    kind: str  # "string" or "integer"
    values: tuple[str | int, ...]
    source: str


@dataclass(frozen=True, slots=True)
class Variant:
    """One branch of a union; ``tag`` is the discriminator value for tagged unions."""

    type: TypeExpr
    kind: str  # JSON kind: object, array, string, integer, number, boolean
    tag: str | None = None


@dataclass(frozen=True, slots=True)
class UnionDecl:
    """oneOf / anyOf with more than one non-null branch.

    ``discriminator`` names the property whose constant value picks the branch (every branch an
    object that requires it). Without one, branches of distinct JSON kinds are still told apart
    by the kind of the value; otherwise (``opaque``) a language without union types keeps the raw
    JSON, validated by the schema, rather than guess a branch.
    """

    name: str
    description: str | None
    variants: tuple[Variant, ...]
    discriminator: str | None
    source: str

    @property
    def by_kind(self) -> bool:
        return self.discriminator is None and len({v.kind for v in self.variants}) == len(self.variants)

    @property
    def opaque(self) -> bool:
        return self.discriminator is None and not self.by_kind


@dataclass(frozen=True, slots=True)
class AliasDecl:
    """A name for a type expression: the data of a contract whose root is not an object."""

    name: str
    description: str | None
    type: TypeExpr
    source: str


Declaration = ObjectDecl | EnumDecl | UnionDecl | AliasDecl


@dataclass(frozen=True, slots=True)
class ContractTypes:
    """One event contract: its metadata, and the object declaration its data is."""

    type: str
    exchange: str
    routing_key: str
    schema_id: str
    title: str
    major_version: int
    domain: str
    description: str | None
    root: str  # name of the declaration of the event data (an AliasDecl when it is not an object)
    resources: tuple[str, ...]  # $id of the shared documents it reaches
    examples: tuple[Any, ...] = ()

    @property
    def constant(self) -> str:
        """``CONVERSATION_ENDED_V1``, as the Python package names it: the type without its domain."""
        return "_".join(self.type.split(".")[1:]).upper()

    @property
    def summary(self) -> str:
        """The description on one line, for a doc comment."""
        return " ".join((self.description or "").split())

    @property
    def is_alias(self) -> bool:
        """Whether the data is a declaration named otherwise (a contract that is a ``$ref``)."""
        return self.title != self.root


@dataclass(frozen=True, slots=True)
class TypeModel:
    """Every contract and every declaration they need, declarations sorted by name."""

    contracts: tuple[ContractTypes, ...]
    declarations: tuple[Declaration, ...]
    schemas: dict[str, Any] = field(default_factory=dict)  # $id → schema, every document

    def declaration(self, name: str) -> Declaration:
        for declaration in self.declarations:
            if declaration.name == name:
                return declaration
        raise KeyError(name)


def value_kind(value: Any) -> str:
    """The JSON kind of a JSON value: object, array, string, integer, number, boolean or null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def json_kind(expr: TypeExpr, model_declarations: dict[str, Declaration]) -> str:
    """The JSON kind a value of ``expr`` has: object, array, string, integer, number, boolean, null, any."""
    if isinstance(expr, Scalar):
        return expr.kind
    if isinstance(expr, Literal):
        return value_kind(expr.value)
    if isinstance(expr, ArrayOf):
        return "array"
    if isinstance(expr, MapOf):
        return "object"
    if isinstance(expr, Named):
        declaration = model_declarations[expr.name]
        if isinstance(declaration, ObjectDecl):
            return "object"
        if isinstance(declaration, EnumDecl):
            return declaration.kind
        if isinstance(declaration, AliasDecl):
            return json_kind(declaration.type, model_declarations)
        return "union"
    return "any"
