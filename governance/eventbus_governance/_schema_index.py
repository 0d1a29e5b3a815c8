"""Subschemas with their address, and ``$ref`` followed across the files of one contracts tree.

Lint, breaking and the catalog all read a contract the way a validator does: ``$ref`` replaced by
what it points at. They also need to say where every keyword came from (a finding about
``format`` inside ``common/time.schema.json`` points into that file, not at the ``$ref`` that
reached it). ``SchemaNode`` carries a value together with its document and JSON pointer;
``SchemaIndex.keywords`` gives a node's keywords with the ``$ref`` target folded in, each keyword
still carrying its own address.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin

from eventbus_codegen._contracts import ContractDocument, ContractSet
from eventbus_codegen._refs import escape_pointer

__all__ = ["SchemaIndex", "SchemaNode", "schema_children"]

# Keywords whose value is one subschema, a list of them, or a name → subschema map.
SINGLE_SUBSCHEMA = ("additionalProperties", "contains", "else", "if", "items", "not", "propertyNames", "then",
                    "unevaluatedItems", "unevaluatedProperties")
LIST_OF_SUBSCHEMAS = ("allOf", "anyOf", "oneOf", "prefixItems")
MAP_OF_SUBSCHEMAS = ("$defs", "definitions", "dependentSchemas", "patternProperties", "properties")


@dataclass(frozen=True, slots=True)
class SchemaNode:
    """A value inside a schema document, with the document and the JSON pointer it sits at."""

    doc: ContractDocument
    pointer: str
    value: Any

    def child(self, *tokens: str | int) -> SchemaNode:
        value, pointer = self.value, self.pointer
        for token in tokens:
            value = value[token]
            pointer = f"{pointer}/{escape_pointer(str(token))}"
        return SchemaNode(self.doc, pointer, value)

    @property
    def address(self) -> str:
        """``<relative path>#<pointer>``: where to look."""
        return f"{self.doc.relative_path}#{self.pointer}"


def schema_children(node: SchemaNode) -> Iterator[SchemaNode]:
    """Every direct subschema of ``node`` (not following ``$ref``); data keywords are never entered."""
    if not isinstance(node.value, dict):
        return
    for key in SINGLE_SUBSCHEMA:
        if isinstance(node.value.get(key), dict | bool):
            yield node.child(key)
    for key in LIST_OF_SUBSCHEMAS:
        if isinstance(node.value.get(key), list):
            for index in range(len(node.value[key])):
                yield node.child(key, index)
    for key in MAP_OF_SUBSCHEMAS:
        if isinstance(node.value.get(key), dict):
            for name in node.value[key]:
                yield node.child(key, name)


class SchemaIndex:
    """Every document of a contracts tree by ``$id``, for following ``$ref``."""

    def __init__(self, contracts: ContractSet) -> None:
        self.contracts = contracts
        self._by_id = {doc.schema_id: doc for doc in contracts.documents}

    def root(self, doc: ContractDocument) -> SchemaNode:
        return SchemaNode(doc, "", doc.schema)

    def target_uri(self, node: SchemaNode) -> str | None:
        """The absolute URI ``node``'s ``$ref`` names, or ``None`` when it has none."""
        ref = node.value.get("$ref") if isinstance(node.value, dict) else None
        return urljoin(node.doc.schema_id, ref) if isinstance(ref, str) else None

    def resolve(self, node: SchemaNode) -> SchemaNode | None:
        """What ``node``'s ``$ref`` points at, or ``None`` when it has none or it lands nowhere."""
        uri = self.target_uri(node)
        if uri is None:
            return None
        document_id, fragment = urldefrag(uri)
        doc = self._by_id.get(document_id)
        if doc is None:
            return None
        if fragment and not fragment.startswith("/"):
            return _find_anchor(SchemaNode(doc, "", doc.schema), fragment)
        target = SchemaNode(doc, "", doc.schema)
        for token in unquote(fragment).split("/")[1:] if fragment else []:
            token = token.replace("~1", "/").replace("~0", "~")
            value = target.value
            if isinstance(value, dict) and token in value:
                target = target.child(token)
            elif isinstance(value, list) and token.isdigit() and int(token) < len(value):
                target = target.child(int(token))
            else:
                return None
        return target

    def keywords(self, node: SchemaNode) -> dict[str, SchemaNode] | bool:
        """``node``'s keywords with its ``$ref`` chain folded in (the node's own keywords win).

        A boolean schema stays a boolean (``True`` accepts anything, ``False`` nothing). An
        unresolvable or cyclic ``$ref`` keeps only the node's own keywords; the loader and lint
        report such references.
        """
        if isinstance(node.value, bool):
            return node.value
        if not isinstance(node.value, dict):
            return {}
        merged: dict[str, SchemaNode] = {}
        seen: set[str] = set()
        current: SchemaNode | None = node
        while current is not None and isinstance(current.value, dict):
            for key in current.value:
                if key != "$ref":
                    merged.setdefault(key, current.child(key))
            uri = self.target_uri(current)
            if uri is None or uri in seen:
                break
            seen.add(uri)
            current = self.resolve(current)
            if current is not None and isinstance(current.value, bool):
                return merged if merged else current.value
        return merged


def _find_anchor(node: SchemaNode, anchor: str) -> SchemaNode | None:
    if isinstance(node.value, dict):
        if node.value.get("$anchor") == anchor:
            return node
        for key in node.value:
            found = _find_anchor(node.child(key), anchor)
            if found is not None:
                return found
    elif isinstance(node.value, list):
        for index in range(len(node.value)):
            found = _find_anchor(node.child(index), anchor)
            if found is not None:
                return found
    return None
