"""Draft 2020-12 schemas rewritten, meaning for meaning, as draft-07 for validators that stop there.

gojsonschema (the Go binding's validator) knows drafts 4, 6 and 7. Most of 2020-12 is draft-07
under other names, so the Go module embeds a translated copy of every schema:

    $defs                        → definitions (and every "$ref" fragment through it)
    prefixItems + items          → items (array) + additionalItems
    dependentRequired / -Schemas → dependencies
    $anchor                      → "$id": "#anchor"
    $ref beside other keywords   → {"allOf": [{"$ref": …}], …}  (draft-07 ignores siblings of $ref)

    $dynamicRef / $dynamicAnchor → $ref / "$id": "#anchor"  (their fixed meaning: the anchor they name)
    $recursiveRef                → $ref "#"
    unevaluatedProperties: X     → additionalProperties: X, where no applicator beside it can evaluate
                                   properties (the same meaning); unevaluatedItems likewise → items

What draft-07 cannot say (``unevaluatedProperties`` beside ``allOf``/``oneOf``/…, ``minContains``,
``maxContains``) is left out of the Go copy with a ``CodegenWarning`` naming the spot: Go then
checks less than TypeScript and Python there, and says so, rather than refusing the contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._errors import GenerationError, warn
from ._refs import escape_pointer

__all__ = ["DRAFT_07", "to_draft07"]

DRAFT_07 = "http://json-schema.org/draft-07/schema#"

_UNTRANSLATABLE = ("minContains", "maxContains")
# Applicators that can evaluate properties or items beside the schema's own keywords.
_APPLICATORS = frozenset({"$ref", "$dynamicRef", "allOf", "anyOf", "oneOf", "if", "then", "else", "not",
                          "dependentSchemas"})
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
    node = _unevaluated(dict(node), pointer, path)
    out: dict[str, Any] = {}
    for key, value in node.items():
        child = f"{pointer}/{escape_pointer(key)}"
        if key in _DATA or key.startswith("x-"):
            out[key] = value
        elif key == "$schema" and pointer:
            continue
        elif key in ("$ref", "$dynamicRef"):
            out["$ref"] = _rewrite_ref(value)
        elif key == "$recursiveRef":
            out["$ref"] = "#"
        elif key in ("$anchor", "$dynamicAnchor"):
            out["$id"] = f"#{value}"
        elif key == "$recursiveAnchor" or key in _UNTRANSLATABLE:
            if key in _UNTRANSLATABLE:
                warn(path, child, f"{key} has no draft-07 equivalent: Go does not check it")
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


def _unevaluated(node: dict[str, Any], pointer: str, path: Path) -> dict[str, Any]:
    """``unevaluatedProperties``/``unevaluatedItems`` as their draft-07 equivalents where they mean the same."""
    for keyword, plain, own in (("unevaluatedProperties", "additionalProperties", "additionalProperties"),
                                ("unevaluatedItems", "items", "items")):
        if keyword not in node:
            continue
        value = node.pop(keyword)
        same = not (_APPLICATORS & node.keys()) and own not in node
        if keyword == "unevaluatedItems" and "prefixItems" in node:
            same = False
        if same:
            node[plain] = value
        else:
            warn(path, f"{pointer}/{keyword}",
                  f"{keyword} beside applicators has no draft-07 equivalent: Go does not check it")
    return node


def _rewrite_ref(ref: Any) -> Any:
    if not isinstance(ref, str) or "#" not in ref:
        return ref
    document, _, fragment = ref.partition("#")
    tokens = fragment.split("/")
    tokens = ["definitions" if token == "$defs" else token for token in tokens]
    return f"{document}#{'/'.join(tokens)}"
