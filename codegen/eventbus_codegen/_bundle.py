"""One contract as one self-contained schema holding only what it reaches.

A contract may reach a shared document of hundreds of definitions (GitHub's webhook schema has
344) to use five of them. Tools that read whole files (datamodel-code-generator, and the
baselines of the corpus) would then spend time and output on all of them. ``bundle_contract``
follows the contract's ``$ref``s — to other files, to ``$defs``, to ``$anchor``s, to ``$id``s of
subschemas inside bundled documents, to a whole document — and copies each subschema it reaches,
once, into the result's ``$defs``, rewriting every reference to ``#/$defs/<name>`` (``#`` for the
contract itself). Nothing else of the shared documents comes along, so generation time and size
grow with what the contract uses.

``$dynamicRef`` is resolved like ``$ref`` to the ``$dynamicAnchor`` of the resource it names:
its fixed meaning when no other schema in the dynamic scope re-declares the anchor, which is the
only case a static type can express. The traversal is iterative.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin

from ._contracts import ContractDocument, ContractSet
from ._errors import GenerationError
from ._names import pascal_case
from ._refs import find_anchor, iter_subschemas, resolve_pointer

__all__ = ["Located", "base_uri_at", "bundle_contract", "locate_ref"]

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
Located = tuple[str, str]  # (document $id, JSON pointer of the subschema)
_DROPPED = ("$id", "$schema", "$anchor", "$dynamicAnchor", "$defs", "definitions", "$comment")


def locate_ref(contracts: ContractSet, uri: str) -> Located | None:
    """The subschema an absolute ``$ref`` URI names, as (document $id, pointer); ``None`` if nothing."""
    resource, fragment = urldefrag(uri)
    found = contracts.locate(resource)
    if found is None:
        return None
    document, inside = found
    if not fragment:
        return document.schema_id, inside
    base_node = resolve_pointer(document.schema, inside)[1]
    if fragment.startswith("/"):
        ok, _ = resolve_pointer(base_node, fragment)
        return (document.schema_id, inside + unquote(fragment)) if ok else None
    anchor = find_anchor(base_node, fragment)
    return None if anchor is None else (document.schema_id, inside + anchor)


def base_uri_at(document: ContractDocument, pointer: str) -> str:
    """The base URI in force at ``pointer`` of ``document``: its ``$id``, changed by every nested ``$id`` above."""
    base = document.schema_id
    node: Any = document.schema
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
        if isinstance(node, dict) and isinstance(node.get("$id"), str) and not node["$id"].startswith("#"):
            base = urljoin(base, node["$id"])
    return base


def bundle_contract(contracts: ContractSet, document: ContractDocument) -> dict[str, Any]:
    """``document`` with every subschema it reaches copied into ``$defs``; refs rewritten to them."""
    root: Located = (document.schema_id, "")
    names: dict[Located, str] = {}
    taken: set[str] = set()
    pending: list[Located] = []

    def name_for(target: Located) -> str:
        if target == root:
            return "#"
        if target not in names:
            hint = _hint(contracts, target)
            name, counter = hint, 2
            while name in taken:
                name, counter = f"{hint}{counter}", counter + 1
            names[target] = name
            taken.add(name)
            pending.append(target)
        return f"#/$defs/{names[target]}"

    result = _copy(contracts, root, name_for)
    result["$schema"] = DRAFT_2020_12
    definitions: dict[str, Any] = {}
    while pending:
        target = pending.pop(0)
        definitions[names[target]] = _copy(contracts, target, name_for)
    if definitions:
        result["$defs"] = dict(sorted(definitions.items()))
    return result


def _copy(contracts: ContractSet, at: Located, name_for: Callable[[Located], str]) -> Any:
    owner = contracts.by_id(at[0])
    node = resolve_pointer(owner.schema, at[1])[1]
    copied = copy.deepcopy(node)
    if not isinstance(node, dict):
        return copied
    for pointer, subschema, base in iter_subschemas(node, base_uri_at(owner, at[1])):
        target_node = resolve_pointer(copied, pointer)[1]
        for keyword in ("$ref", "$dynamicRef"):
            ref = subschema.get(keyword)
            if not isinstance(ref, str):
                continue
            target = locate_ref(contracts, urljoin(base, ref))
            if target is None:
                raise GenerationError(owner.path, f"{at[1]}{pointer}/{keyword}", f"{keyword} {ref!r} points at nothing")
            target_node.pop(keyword)
            target_node["$ref"] = name_for(target)
    # Every reference now points at the top-level $defs, so nested definitions and ids can go.
    for _, subschema, _ in iter_subschemas(copied, ""):
        for key in _DROPPED:
            subschema.pop(key, None)
    return copied


def _hint(contracts: ContractSet, at: Located) -> str:
    document = contracts.by_id(at[0])
    tokens = [unquote(t).replace("~1", "/").replace("~0", "~") for t in at[1].split("/")[1:]]
    node = resolve_pointer(document.schema, at[1])[1]
    own_id = node.get("$id") if isinstance(node, dict) else None
    if isinstance(own_id, str) and not own_id.startswith("#") and tokens:
        stem = own_id.rstrip("/").rsplit("/", 1)[-1].split(".")[0]
        return pascal_case(stem)
    if not tokens:
        title = document.schema.get("title")
        return pascal_case(title if isinstance(title, str) else document.relative_path.name.split(".")[0])
    if tokens[-1].isdigit() or tokens[-1] in ("items", "additionalProperties", "not"):
        return pascal_case("_".join(tokens[-3:]))
    return pascal_case(tokens[-1])
