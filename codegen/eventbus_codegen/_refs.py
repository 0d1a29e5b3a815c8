"""Finding and following ``$ref`` in JSON Schema documents, without a validator.

The loader needs every reference of a document (to check it lands somewhere and to know which
shared documents a contract reaches) and the Python generator needs to rewrite them; both walk
schemas with ``iter_subschemas``, which knows where subschemas are: under the applicator
keywords of draft-07 and 2020-12 only. Values of anything else (``examples``, ``example``,
``default``, ``x-…`` extensions, keywords nobody standardised) are data, so a ``"$ref"`` key
inside them is not a reference and is never followed.

The walk is iterative (an explicit stack), so a deeply nested schema cannot exhaust Python's
recursion limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urljoin

__all__ = ["escape_pointer", "fragment_exists", "iter_ids", "iter_refs", "iter_subschemas", "resolve_pointer"]

# Keywords whose value is one subschema.
SCHEMA_VALUED = frozenset({
    "additionalItems", "additionalProperties", "contains", "contentSchema", "else", "if", "items", "not",
    "propertyNames", "then", "unevaluatedItems", "unevaluatedProperties",
})
# Keywords whose value is an array of subschemas (``items`` too, in draft-07's tuple form).
SCHEMA_ARRAYS = frozenset({"allOf", "anyOf", "items", "oneOf", "prefixItems"})
# Keywords whose values map names (of properties, definitions, ...) to subschemas.
SCHEMA_MAPS = frozenset({"$defs", "definitions", "dependencies", "dependentSchemas", "patternProperties",
                         "properties"})


def iter_subschemas(node: Any, base_uri: str, pointer: str = "") -> Iterator[tuple[str, dict[str, Any], str]]:
    """Yield ``(JSON pointer, subschema, its base URI)`` for ``node`` and every subschema under it, in document order.

    A nested ``$id`` changes the base URI of the subschema that carries it and of everything below.
    """
    stack: list[tuple[str, Any, str]] = [(pointer, node, base_uri)]
    while stack:
        here, schema, base = stack.pop()
        if not isinstance(schema, dict):
            continue
        own_id = schema.get("$id")
        if isinstance(own_id, str) and not own_id.startswith("#"):
            base = urljoin(base, own_id)
        yield here, schema, base
        children: list[tuple[str, Any, str]] = []
        for key, value in schema.items():
            child = f"{here}/{escape_pointer(key)}"
            if key in SCHEMA_MAPS and isinstance(value, dict):
                children += [(f"{child}/{escape_pointer(name)}", sub, base) for name, sub in value.items()]
            elif key in SCHEMA_ARRAYS and isinstance(value, list):
                children += [(f"{child}/{index}", sub, base) for index, sub in enumerate(value)]
            elif key in SCHEMA_VALUED:
                children.append((child, value, base))
        stack.extend(reversed(children))


def iter_refs(node: Any, base_uri: str, pointer: str = "") -> Iterator[tuple[str, str]]:
    """Yield ``(JSON pointer of the $ref, absolute target URI)`` for every ``$ref`` under ``node``.

    Only ``$ref`` keys of real subschemas count: data keywords (``examples``, ``enum``, ...),
    annotations and ``x-`` extensions are skipped, and property names are never mistaken for keywords.
    """
    for here, schema, base in iter_subschemas(node, base_uri, pointer):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            yield f"{here}/$ref", urljoin(base, ref)


def iter_ids(node: Any, base_uri: str) -> Iterator[tuple[str, str]]:
    """Yield ``(JSON pointer, absolute $id)`` of every subschema below the root that names itself with ``$id``.

    Bundled documents (AsyncAPI's, for instance) keep each original file under its own ``$id``
    inside ``definitions``; a ``$ref`` to that ``$id`` means that subschema.
    """
    for here, schema, base in iter_subschemas(node, base_uri):
        if here and isinstance(schema.get("$id"), str) and not schema["$id"].startswith("#"):
            yield here, base.split("#", 1)[0]


def escape_pointer(token: str) -> str:
    """One JSON pointer token (RFC 6901), so ``/`` or ``~`` in a property name does not read as structure."""
    return token.replace("~", "~0").replace("/", "~1")


def resolve_pointer(schema: Any, fragment: str) -> tuple[bool, Any]:
    """``(found, node)`` for the JSON pointer ``fragment`` (``/a/b``, URI-escaped or not) in ``schema``."""
    node = schema
    for token in unquote(fragment).split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return False, None
    return True, node


def fragment_exists(schema: Any, fragment: str) -> bool:
    """Whether ``#fragment`` (a JSON pointer or an ``$anchor`` name) names something in ``schema``.

    Checked when loading, so a typo in a ``$ref`` is reported at its source rather than by some
    validator or generator later.
    """
    if not fragment:
        return True
    if not fragment.startswith("/"):
        return find_anchor(schema, fragment) is not None
    return resolve_pointer(schema, fragment)[0]


def find_anchor(schema: Any, anchor: str) -> str | None:
    """The JSON pointer of the subschema declaring ``$anchor`` (or ``$dynamicAnchor``) ``anchor``, if any."""
    for here, node, _ in iter_subschemas(schema, ""):
        if node.get("$anchor") == anchor or node.get("$dynamicAnchor") == anchor:
            return here
        if isinstance(node.get("$id"), str) and node["$id"] == f"#{anchor}":
            return here  # draft-07 spells anchors as "$id": "#name"
    return None
