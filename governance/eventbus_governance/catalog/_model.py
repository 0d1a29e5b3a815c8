"""The event catalog as data: what the HTML pages and the AsyncAPI document are made from.

One ``EventPage`` per contract file (event type and major version) with everything a reader of
another team needs: what it means, who publishes and who subscribes, its fields as a flat table
(``$ref`` followed, nested objects, arrays and maps unfolded), examples, and the other major
versions of the same event. Templates only lay this out; nothing here knows about HTML.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from eventbus_codegen._contracts import ContractDocument, ContractSet

from .._consumers import Consumer, ConsumerRegistry
from .._schema_index import SchemaIndex, SchemaNode

__all__ = ["Catalog", "EventPage", "FieldRow", "build_catalog"]

_MAX_DEPTH = 8
_CONSTRAINTS = (
    ("format", "format {}"), ("minLength", "length ≥ {}"), ("maxLength", "length ≤ {}"), ("pattern", "pattern {}"),
    ("minimum", "≥ {}"), ("exclusiveMinimum", "> {}"), ("maximum", "≤ {}"), ("exclusiveMaximum", "< {}"),
    ("multipleOf", "multiple of {}"), ("minItems", "≥ {} items"), ("maxItems", "≤ {} items"),
    ("minProperties", "≥ {} entries"), ("maxProperties", "≤ {} entries"),
)


@dataclass(frozen=True, slots=True)
class FieldRow:
    """One line of a field table; ``name`` is a path such as ``candidates[].user_id``."""

    name: str
    depth: int
    type: str
    required: bool
    description: str
    constraints: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EventPage:
    document: ContractDocument
    fields: tuple[FieldRow, ...]
    examples: tuple[str, ...]
    subscribers: tuple[Consumer, ...]
    versions: tuple[EventPage, ...] = field(default=(), compare=False)

    @property
    def type(self) -> str:
        return self.document.event_metadata.type

    @property
    def major(self) -> int:
        return self.document.event_metadata.major_version

    @property
    def family(self) -> str:
        """The event without its version: ``chat.conversation.ended``."""
        return self.type.rpartition(".v")[0]

    @property
    def href(self) -> str:
        return f"events/{self.type}.html"

    @property
    def schema_href(self) -> str:
        return f"schemas/{self.document.relative_path}"

    @property
    def description(self) -> str:
        return str(self.document.schema.get("description", ""))

    @property
    def message_name(self) -> str:
        """``ConversationEndedV1``: the name of the generated class and of the AsyncAPI message."""
        return f"{self.document.title}V{self.major}"


@dataclass(frozen=True, slots=True)
class Catalog:
    """Every event page, grouped by domain (sorted), and the source documents."""

    contracts: ContractSet
    pages: tuple[EventPage, ...]

    @property
    def domains(self) -> dict[str, list[EventPage]]:
        grouped: dict[str, list[EventPage]] = {}
        for page in self.pages:
            grouped.setdefault(page.document.event_metadata.domain, []).append(page)
        return dict(sorted(grouped.items()))

    def schema_files(self) -> Iterator[tuple[str, Path]]:
        for doc in self.contracts.documents:
            yield f"schemas/{doc.relative_path}", doc.path


def build_catalog(contracts: ContractSet, consumers: ConsumerRegistry) -> Catalog:
    index = SchemaIndex(contracts)
    pages = []
    for doc in sorted(contracts.events, key=lambda d: d.event_metadata.type):
        examples = doc.schema.get("examples", [])
        pages.append(EventPage(
            document=doc,
            fields=tuple(_fields(index, index.root(doc), "", 0, frozenset())),
            examples=tuple(json.dumps(example, indent=2, ensure_ascii=False) for example in examples),
            subscribers=consumers.readers_of(doc.event_metadata.type),
        ))
    linked = []
    for page in pages:
        family = tuple(sorted((p for p in pages if p.family == page.family), key=lambda p: p.major))
        linked.append(EventPage(page.document, page.fields, page.examples, page.subscribers, family))
    return Catalog(contracts, tuple(linked))


def _fields(index: SchemaIndex, node: SchemaNode, prefix: str, depth: int, seen: frozenset[str]) -> Iterator[FieldRow]:
    keywords = index.keywords(node)
    if isinstance(keywords, bool) or depth > _MAX_DEPTH or node.address in seen:
        return
    seen = seen | {node.address}
    required = keywords["required"].value if "required" in keywords else []
    properties = keywords.get("properties")
    for name in properties.value if properties is not None else []:
        assert properties is not None
        yield from _field(index, properties.child(name), f"{prefix}{name}", name in required, depth, seen)
    extra = keywords.get("additionalProperties")
    if extra is not None and isinstance(extra.value, dict):
        yield from _field(index, extra, f"{prefix}*" if prefix else "*", False, depth, seen)


def _field(index: SchemaIndex, node: SchemaNode, name: str, required: bool, depth: int,
           seen: frozenset[str]) -> Iterator[FieldRow]:
    keywords = index.keywords(node)
    if isinstance(keywords, bool):
        yield FieldRow(name, depth, "any" if keywords else "nothing", required, "", ())
        return
    yield FieldRow(name, depth, describe_type(index, keywords), required, _text(keywords, "description"),
                   _constraints(keywords))
    yield from _fields(index, node, f"{name}.", depth + 1, seen)
    items = keywords.get("items")
    if items is not None and isinstance(items.value, dict):
        item_keywords = index.keywords(items)
        if not isinstance(item_keywords, bool) and ("properties" in item_keywords or "additionalProperties"
                                                    in item_keywords):
            yield from _fields(index, items, f"{name}[].", depth + 1, seen)


def describe_type(index: SchemaIndex, keywords: dict[str, SchemaNode]) -> str:
    """``string (Timestamp)``, ``array of string (UserId)``, ``object (map of integer)``, ``"a" | "b"``."""
    if "const" in keywords:
        return json.dumps(keywords["const"].value)
    if "enum" in keywords:
        return " | ".join(json.dumps(value) for value in keywords["enum"].value)
    declared = keywords["type"].value if "type" in keywords else None
    text = " | ".join(declared) if isinstance(declared, list) else (declared or "any")
    if declared == "array" and "items" in keywords:
        item = index.keywords(keywords["items"])
        text = "array of " + (describe_type(index, item) if isinstance(item, dict) else "any")
    elif declared == "object" and "properties" not in keywords and "additionalProperties" in keywords:
        value = index.keywords(keywords["additionalProperties"])
        key = index.keywords(keywords["propertyNames"]) if "propertyNames" in keywords else {}
        key_title = _text(key, "title") if isinstance(key, dict) else ""
        if isinstance(value, dict):
            text = f"map {key_title or 'string'} → {describe_type(index, value)}"
    for composition in ("oneOf", "anyOf"):
        if composition in keywords:
            text = f"{composition} of {len(keywords[composition].value)}"
    title = _text(keywords, "title")
    return f"{text} ({title})" if title and not text.startswith("map ") else text


def _constraints(keywords: dict[str, SchemaNode]) -> tuple[str, ...]:
    found = [template.format(keywords[key].value) for key, template in _CONSTRAINTS if key in keywords]
    if keywords.get("uniqueItems") is not None and keywords["uniqueItems"].value is True:
        found.append("unique items")
    if "additionalProperties" in keywords and keywords["additionalProperties"].value is False:
        found.append("no other fields")
    return tuple(found)


def _text(keywords: dict[str, SchemaNode], key: str) -> str:
    value = keywords[key].value if key in keywords else ""
    return value if isinstance(value, str) else ""
