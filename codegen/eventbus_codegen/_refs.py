"""Finding and following ``$ref`` in JSON Schema documents, without a validator.

The loader needs every reference of a document (to check it lands somewhere and to know which
shared documents a contract reaches) and the Python generator needs to rewrite them; both walk
schemas with ``iter_refs``, which knows where subschemas are and where data is.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urljoin

__all__ = ["escape_pointer", "fragment_exists", "iter_refs"]

# Keywords whose values are data, not subschemas: a "$ref" key inside them is not a reference.
_DATA_KEYWORDS = frozenset({"const", "default", "enum", "examples"})
# Keywords whose values map names (of properties, definitions, ...) to subschemas.
_SCHEMA_MAPS = frozenset({"$defs", "definitions", "dependentSchemas", "patternProperties", "properties"})


def iter_refs(node: Any, base_uri: str, pointer: str = "") -> Iterator[tuple[str, str]]:
    """Yield ``(JSON pointer of the $ref, absolute target URI)`` for every ``$ref`` under ``node``.

    Values of data keywords (``examples``, ``enum``, ...) and ``x-`` extensions are skipped, and
    property names are never mistaken for keywords, so only real references are reported.
    """
    if isinstance(node, dict):
        if pointer and isinstance(node.get("$id"), str):
            base_uri = urljoin(base_uri, node["$id"])
        for key, value in node.items():
            child = f"{pointer}/{escape_pointer(key)}"
            if key == "$ref" and isinstance(value, str):
                yield child, urljoin(base_uri, value)
            elif key in _DATA_KEYWORDS or key.startswith("x-"):
                continue
            elif key in _SCHEMA_MAPS and isinstance(value, dict):
                for name, subschema in value.items():
                    yield from iter_refs(subschema, base_uri, f"{child}/{escape_pointer(name)}")
            else:
                yield from iter_refs(value, base_uri, child)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from iter_refs(item, base_uri, f"{pointer}/{index}")


def escape_pointer(token: str) -> str:
    """One JSON pointer token (RFC 6901), so ``/`` or ``~`` in a property name does not read as structure."""
    return token.replace("~", "~0").replace("/", "~1")


def fragment_exists(schema: Any, fragment: str) -> bool:
    """Whether ``#fragment`` (a JSON pointer or an ``$anchor`` name) names something in ``schema``.

    Checked when loading, so a typo in a ``$ref`` is reported at its source rather than by some
    validator or generator later.
    """
    if not fragment:
        return True
    if not fragment.startswith("/"):
        return _has_anchor(schema, fragment)
    node = schema
    for token in unquote(fragment).split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return False
    return True


def _has_anchor(node: Any, anchor: str) -> bool:
    if isinstance(node, dict):
        if node.get("$anchor") == anchor:
            return True
        return any(_has_anchor(value, anchor) for value in node.values())
    if isinstance(node, list):
        return any(_has_anchor(item, anchor) for item in node)
    return False
