"""Lint checks on what a contract says: descriptions, examples, constraints, names, references.

Each one closes a way a schema lets too much through or tells another team too little: a
property nobody described, a value nothing constrains, an object whose openness nobody decided,
a timestamp without ``format``, a ``$ref`` to a file outside the contracts tree.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urldefrag

from eventbus_codegen._contracts import ContractDocument
from eventbus_codegen._refs import iter_refs
from eventbus_codegen._validate import _check_examples  # the validate command's own check: one definition of "valid"

from .._schema_index import SchemaNode
from ._context import Issue, LintContext, LintFile

__all__ = [
    "check_additional_properties",
    "check_contract_described",
    "check_date_time_format",
    "check_enum_values",
    "check_examples_present",
    "check_examples_valid",
    "check_property_described",
    "check_property_names",
    "check_ref_resolves",
    "check_ref_stays_in_tree",
    "check_unconstrained",
]

_SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
_TIME_NAME = re.compile(r"(.*_)?(at|time|date|timestamp|datetime)")
_TIME_FORMATS = frozenset({"date-time", "date", "time"})
# A subschema constrains its value when it has one of these; annotations alone accept anything.
_CONSTRAINING = frozenset({"type", "$ref", "enum", "const", "allOf", "anyOf", "oneOf", "not", "if"})
# Where `true` is an explicit, deliberate "anything": not an accident of an empty schema.
_OPEN_BY_CHOICE = frozenset({"additionalProperties", "unevaluatedProperties", "items", "unevaluatedItems"})


def check_contract_described(ctx: LintContext) -> Iterator[Issue]:
    for file in ctx.schema_files:
        assert file.schema is not None
        description = file.schema.get("description")
        if not isinstance(description, str) or not description.strip():
            yield file.path, "/description", "missing description: say what happened and who publishes it"


def check_property_described(ctx: LintContext) -> Iterator[Issue]:
    for file in ctx.schema_files:
        for node in ctx.subschemas(file):
            parent, _, name = node.pointer.rpartition("/")
            if not (parent.endswith("/properties") or parent.endswith("/$defs")) or not isinstance(node.value, dict):
                continue
            description = node.value.get("description")
            if not isinstance(description, str) or not description.strip():
                kind = "property" if parent.endswith("/properties") else "definition"
                yield file.path, node.pointer, f"{kind} {_unescape(name)!r} has no description"


def check_examples_present(ctx: LintContext) -> Iterator[Issue]:
    for file in ctx.event_files:
        assert file.schema is not None
        examples = file.schema.get("examples")
        if not isinstance(examples, list) or not examples:
            yield file.path, "/examples", "no examples: give at least one valid payload (docs and tests use it)"


def check_examples_valid(ctx: LintContext) -> Iterator[Issue]:
    for file in ctx.event_files:
        doc = ctx.document(file)
        examples = file.schema.get("examples") if file.schema else None
        if doc is None or not isinstance(examples, list) or not examples:
            continue  # EXAMPLES_PRESENT says it
        if not _refs_resolve(ctx, doc):
            continue  # the validator would go looking on the network; REF_RESOLVES reports the $ref
        for problem in _check_examples(doc, ctx.contracts.resources_for(doc)):
            yield problem.path, problem.pointer, problem.message


def check_unconstrained(ctx: LintContext) -> Iterator[Issue]:
    for file in ctx.schema_files:
        for node in ctx.subschemas(file):
            if not node.pointer or node.pointer.rpartition("/")[0].endswith("/not"):
                continue
            keyword = _keyword_of(node)
            if node.value is True and keyword not in _OPEN_BY_CHOICE:
                yield file.path, node.pointer, "schema 'true' accepts any value: give it a type"
            elif isinstance(node.value, dict) and not _CONSTRAINING & node.value.keys():
                yield file.path, node.pointer, "schema accepts any value: give it a type, $ref, enum or const"


def check_additional_properties(ctx: LintContext) -> Iterator[Issue]:
    for file in ctx.schema_files:
        for node in ctx.subschemas(file):
            if not isinstance(node.value, dict) or not _is_object_schema(node.value):
                continue
            if "additionalProperties" not in node.value and "unevaluatedProperties" not in node.value:
                yield file.path, node.pointer or "/type", (
                    "object schema leaves additionalProperties implicit: say false (closed) or true (open)"
                )


def check_enum_values(ctx: LintContext) -> Iterator[Issue]:
    for file in ctx.schema_files:
        for node in ctx.subschemas(file):
            values = node.value.get("enum") if isinstance(node.value, dict) else None
            for index, value in enumerate(values if isinstance(values, list) else []):
                if isinstance(value, str) and not _SNAKE_CASE.fullmatch(value):
                    yield file.path, f"{node.pointer}/enum/{index}", f"enum value {value!r} is not lower_snake_case"


def check_property_names(ctx: LintContext) -> Iterator[Issue]:
    for file in ctx.schema_files:
        for node in ctx.subschemas(file):
            parent, _, name = node.pointer.rpartition("/")
            if parent.endswith("/properties") and not _SNAKE_CASE.fullmatch(_unescape(name)):
                yield file.path, node.pointer, f"property name {_unescape(name)!r} is not lower_snake_case"


def check_date_time_format(ctx: LintContext) -> Iterator[Issue]:
    for file in ctx.schema_files:
        for node in ctx.subschemas(file):
            parent, _, name = node.pointer.rpartition("/")
            if not parent.endswith("/properties") or not _TIME_NAME.fullmatch(_unescape(name)):
                continue
            if isinstance(node.value, dict) and "$ref" in node.value and ctx.index.resolve(node) is None:
                continue  # what it points at is unknown; REF_RESOLVES says so
            keywords = ctx.index.keywords(node)
            if isinstance(keywords, bool):
                continue
            value_format = keywords["format"].value if "format" in keywords else None
            if value_format not in _TIME_FORMATS:
                yield file.path, node.pointer, (
                    f"{_unescape(name)!r} names a time: make it a string with format date-time (RFC 3339), "
                    "e.g. $ref common/time.schema.json#/$defs/Timestamp"
                )


def check_ref_stays_in_tree(ctx: LintContext) -> Iterator[Issue]:
    for file, pointer, target in _refs(ctx):
        if not target.startswith(str(file.base_uri)):
            yield file.path, pointer, f"$ref leaves the contracts tree: {target!r} is not under {file.base_uri!r}"


def check_ref_resolves(ctx: LintContext) -> Iterator[Issue]:
    known = {doc.schema_id: doc for doc in ctx.contracts.documents}
    for file, pointer, target in _refs(ctx):
        if not target.startswith(str(file.base_uri)):
            continue  # REF_STAYS_IN_TREE says it
        document_id, fragment = urldefrag(target)
        doc = known.get(document_id)
        if doc is None:
            yield file.path, pointer, f"$ref {target!r} names no file in the contracts tree"
        elif ctx.index.resolve(SchemaNode(doc, "", {"$ref": target})) is None:
            yield file.path, pointer, f"$ref {target!r} points at nothing: {doc.relative_path} has no '#{fragment}'"


def _refs(ctx: LintContext) -> Iterator[tuple[LintFile, str, str]]:
    """Every ``$ref`` of every file whose ``$id`` is sound (ID_MATCHES_PATH reports the others)."""
    for file in ctx.schema_files:
        if file.schema_id is None or file.base_uri is None:
            continue
        for pointer, target in iter_refs(file.schema, file.schema_id):
            yield file, pointer, target


def _refs_resolve(ctx: LintContext, doc: ContractDocument) -> bool:
    for reached in (doc, *(ctx.contracts.by_id(schema_id) for schema_id in doc.reaches)):
        for _, target in iter_refs(reached.schema, reached.schema_id):
            if ctx.index.resolve(SchemaNode(reached, "", {"$ref": target})) is None:
                return False
    return True


def _is_object_schema(schema: dict[str, object]) -> bool:
    declared = schema.get("type")
    types = declared if isinstance(declared, list) else [declared]
    return "object" in types or "properties" in schema


def _keyword_of(node: SchemaNode) -> str:
    """The keyword ``node`` is the value of (``items``), or of whose map or list it is part."""
    tokens = node.pointer.split("/")
    if tokens[-1] in _OPEN_BY_CHOICE:
        return tokens[-1]
    return tokens[-2] if len(tokens) >= 2 else ""


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")

