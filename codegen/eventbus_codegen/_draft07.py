"""Draft 2020-12 schemas rewritten, meaning for meaning, as draft-07 for validators that stop there.

gojsonschema (the Go binding's validator) knows drafts 4, 6 and 7. Most of 2020-12 is draft-07
under other names, so the Go module embeds a translated copy of every schema:

    $defs                        → definitions (and every "$ref" fragment through it)
    prefixItems + items          → items (array) + additionalItems
    dependentRequired / -Schemas → dependencies
    $anchor                      → "$id": "#anchor"
    $ref beside other keywords   → {"allOf": [{"$ref": …}], …}  (draft-07 ignores siblings of $ref)

Keywords draft-07 has no equivalent for (``unevaluatedProperties``, ``$dynamicRef``,
``minContains``, …) stop the generation with a ``GenerationError`` naming the spot: a validator
silently skipping a rule would accept what the other bindings reject.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._errors import GenerationError
from ._refs import escape_pointer

__all__ = ["DRAFT_07", "to_draft07"]

DRAFT_07 = "http://json-schema.org/draft-07/schema#"

_UNTRANSLATABLE = {
    "$dynamicRef": "dynamic references",
    "$dynamicAnchor": "dynamic anchors",
    "$recursiveRef": "recursive references",
    "$recursiveAnchor": "recursive anchors",
    "unevaluatedProperties": "unevaluatedProperties",
    "unevaluatedItems": "unevaluatedItems",
    "minContains": "minContains",
    "maxContains": "maxContains",
}
_ANNOTATIONS = frozenset({"title", "description", "$comment", "examples", "default", "deprecated", "readOnly",
                          "writeOnly"})
_SUBSCHEMA = frozenset({"additionalItems", "additionalProperties", "contains", "else", "if", "items", "not",
                        "propertyNames", "then"})
_SUBSCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_SUBSCHEMA_MAPS = frozenset({"$defs", "definitions", "dependentSchemas", "patternProperties", "properties"})
_DATA = frozenset({"const", "default", "enum", "examples"})


def to_draft07(schema: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """A draft-07 copy of ``schema`` (a whole document read from ``path``, for error messages)."""
    result = _translate(schema, "", path)
    result["$schema"] = DRAFT_07
    return result


def _translate(node: Any, pointer: str, path: Path) -> Any:
    if isinstance(node, bool):
        return node
    if not isinstance(node, dict):
        raise GenerationError(path, pointer, "a schema must be an object or a boolean")
    for keyword, what in _UNTRANSLATABLE.items():
        if keyword in node:
            raise GenerationError(
                path, f"{pointer}/{escape_pointer(keyword)}",
                f"{what} have no draft-07 equivalent, so gojsonschema (Go) cannot check this schema faithfully",
            )
    out: dict[str, Any] = {}
    for key, value in node.items():
        child = f"{pointer}/{escape_pointer(key)}"
        if key in _DATA or key.startswith("x-"):
            out[key] = value
        elif key == "$schema" and pointer:
            continue
        elif key == "$ref":
            out[key] = _rewrite_ref(value)
        elif key == "$anchor":
            out["$id"] = f"#{value}"
        elif key == "$defs" or key == "definitions":
            defs = out.setdefault("definitions", {})
            defs.update({name: _translate(sub, f"{child}/{escape_pointer(name)}", path) for name, sub in value.items()})
        elif key in _SUBSCHEMA_MAPS and isinstance(value, dict):
            target = "dependencies" if key == "dependentSchemas" else key
            out.setdefault(target, {}).update(
                {name: _translate(sub, f"{child}/{escape_pointer(name)}", path) for name, sub in value.items()}
            )
        elif key == "dependentRequired":
            out.setdefault("dependencies", {}).update(value)
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            translated = [_translate(sub, f"{child}/{index}", path) for index, sub in enumerate(value)]
            out["items" if key == "prefixItems" else key] = translated
        elif key in _SUBSCHEMA:
            out[key] = value if isinstance(value, list) else _translate(value, child, path)
        else:
            out[key] = value
    if "prefixItems" in node and "items" in node:
        out["items"] = [_translate(s, f"{pointer}/prefixItems/{i}", path) for i, s in enumerate(node["prefixItems"])]
        out["additionalItems"] = _translate(node["items"], f"{pointer}/items", path)
    if "$ref" in out and set(out) - {"$ref"} - _ANNOTATIONS - {"$id"}:
        ref = out.pop("$ref")
        out["allOf"] = [{"$ref": ref}, *out.get("allOf", [])]
    return out


def _rewrite_ref(ref: Any) -> Any:
    if not isinstance(ref, str) or "#" not in ref:
        return ref
    document, _, fragment = ref.partition("#")
    tokens = fragment.split("/")
    tokens = ["definitions" if token == "$defs" else token for token in tokens]
    return f"{document}#{'/'.join(tokens)}"
