"""Loading the contracts tree: the parser stage every generator and check starts from.

``contracts/<domain>/<entity>.<action>.v<N>.schema.json`` holds one event contract per file;
``contracts/common/`` holds shared definitions reached by relative ``$ref``. Loading reads every
file once, checks what code generation relies on (a usable ``$id`` and title, ``x-eventbus``
metadata that agrees with the file path, every ``$ref`` pointing at something that exists), and
works out which shared documents each contract reaches, so that run-time validation can be handed
exactly the schemas it needs with no file or network access.

Relative ``$ref`` values are resolved against ``$id`` (the JSON Schema rule, used by every
validator), and each ``$id`` must end with the file's own path, so resolving by ``$id`` and
resolving by file location always agree.
"""

from __future__ import annotations

import json
import keyword
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urldefrag, urlsplit

from ._errors import ContractLoadError
from ._refs import fragment_exists, iter_ids, iter_refs, resolve_pointer

__all__ = ["ContractDocument", "ContractSet", "EventMetadata", "load_contracts"]

SHARED_FOLDER = "common"
SCHEMA_SUFFIX = ".schema.json"
COMPATIBILITY_MODES = ("BACKWARD", "FORWARD", "FULL", "NONE")

_NAME = r"[a-z][a-z0-9_]*"
_EVENT_FILE = re.compile(rf"(?P<entity>{_NAME})\.(?P<action>{_NAME})\.v(?P<major>[1-9][0-9]*)")
_DOMAIN = re.compile(_NAME)
_PASCAL_CASE = re.compile(r"[A-Z][A-Za-z0-9]*")


@dataclass(frozen=True, slots=True)
class EventMetadata:
    """The ``x-eventbus`` block of an event contract, checked against the file path."""

    type: str
    exchange: str
    routing_key: str
    owner: str
    compatibility: str
    domain: str
    entity: str
    action: str
    major_version: int


@dataclass(frozen=True, slots=True)
class ContractDocument:
    """One schema file: an event contract, or a shared document from ``contracts/common/``.

    ``reaches`` lists (sorted) the ``$id`` of every other document this one reaches through
    ``$ref``, directly or through the documents it references.
    """

    path: Path
    relative_path: PurePosixPath
    schema: Mapping[str, Any]
    metadata: EventMetadata | None
    reaches: tuple[str, ...] = ()

    @property
    def schema_id(self) -> str:
        return str(self.schema["$id"])

    @property
    def title(self) -> str:
        return str(self.schema["title"])

    @property
    def is_shared(self) -> bool:
        """Decided by location, so a broken ``x-eventbus`` never turns an event into a shared file."""
        return self.relative_path.parts[0] == SHARED_FOLDER

    @property
    def event_metadata(self) -> EventMetadata:
        """The metadata of an event contract; only loaded event contracts are passed to generators."""
        if self.metadata is None:
            raise ValueError(f"{self.relative_path} is not an event contract")
        return self.metadata


@dataclass(frozen=True, slots=True)
class ContractSet:
    """Every document of one contracts tree, sorted by path, with look-ups by ``$id``."""

    root: Path
    documents: tuple[ContractDocument, ...]
    # $id of a subschema inside a document (a bundle's definitions) → (the document's $id, its JSON pointer)
    embedded: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def events(self) -> tuple[ContractDocument, ...]:
        return tuple(doc for doc in self.documents if not doc.is_shared and doc.metadata is not None)

    @property
    def shared(self) -> dict[str, ContractDocument]:
        """Shared documents by ``$id``."""
        return {doc.schema_id: doc for doc in self.documents if doc.is_shared}

    def by_id(self, schema_id: str) -> ContractDocument:
        for doc in self.documents:
            if doc.schema_id == schema_id:
                return doc
        raise KeyError(schema_id)

    def locate(self, uri: str) -> tuple[ContractDocument, str] | None:
        """The document and JSON pointer an absolute URI without fragment names: a file, or a subschema's ``$id``."""
        for doc in self.documents:
            if doc.schema_id == uri:
                return doc, ""
        inside = self.embedded.get(uri)
        if inside is None:
            return None
        return self.by_id(inside[0]), inside[1]

    def resources_for(self, document: ContractDocument) -> dict[str, Mapping[str, Any]]:
        """``$id`` → schema of every document ``document`` reaches: what a validator's registry needs."""
        return {schema_id: self.by_id(schema_id).schema for schema_id in document.reaches}


def load_contracts(root: Path) -> ContractSet:
    """Load and check the contracts tree at ``root``; ``ContractLoadError`` names the first fault.

    Generators call this: they need every document usable. ``validate_contracts`` reports every
    fault instead of the first.
    """
    contracts, errors = collect_contracts(root)
    if errors:
        raise errors[0]
    return contracts


def collect_contracts(root: Path) -> tuple[ContractSet, list[ContractLoadError]]:
    """Load what can be loaded and collect every fault, for reports that list them all.

    Unreadable files are left out of the set; an event file with faulty metadata stays in it
    (with ``metadata=None``) so that schema-level checks can still look at it.
    """
    errors: list[ContractLoadError] = []
    documents: list[ContractDocument] = []
    if not root.is_dir():
        raise ContractLoadError(root, "", "contracts directory not found")
    for path in sorted(root.rglob(f"*{SCHEMA_SUFFIX}")):
        relative = PurePosixPath(path.relative_to(root).as_posix())
        try:
            schema = _read_json_object(path)
        except ContractLoadError as exc:
            errors.append(exc)
            continue
        name, file_errors = _check_location(path, relative)
        file_errors.extend(_check_identity(path, relative, schema))
        metadata = None
        if name is not None:
            metadata, metadata_errors = _read_metadata(path, name, schema)
            file_errors.extend(metadata_errors)
        errors.extend(file_errors)
        if not isinstance(schema.get("$id"), str) or not schema["$id"]:
            continue  # without an $id the document cannot take part in $ref resolution
        documents.append(ContractDocument(path, relative, schema, metadata))
    documents, id_errors = _drop_duplicate_ids(documents)
    errors.extend(id_errors)
    embedded = _embedded_ids(documents)
    documents, ref_errors = _resolve_reaches(documents, embedded)
    errors.extend(ref_errors)
    return ContractSet(root, tuple(documents), embedded), errors


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes(), object_pairs_hook=_reject_duplicate_keys)
    except OSError as exc:
        raise ContractLoadError(path, "", f"cannot read file: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ContractLoadError(path, "", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ContractLoadError(path, "", f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ContractLoadError(path, "", f"a schema file must hold a JSON object, not {type(data).__name__}")
    return data


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which duplicate wins, so a duplicated key means different schemas per language.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _check_identity(path: Path, relative: PurePosixPath, schema: Mapping[str, Any]) -> list[ContractLoadError]:
    errors = []
    is_shared = relative.parts[0] == SHARED_FOLDER
    schema_id = schema.get("$id")
    if not isinstance(schema_id, str) or not schema_id:
        errors.append(ContractLoadError(path, "/$id", "missing $id (a string URI ending with the file's path)"))
    else:
        parts = urlsplit(schema_id)
        if not parts.scheme or parts.fragment or schema_id.endswith("#"):
            errors.append(
                ContractLoadError(path, "/$id", f"$id {schema_id!r} must be an absolute URI with no fragment")
            )
        elif not unquote(parts.path).endswith(f"/{relative}"):
            errors.append(
                ContractLoadError(
                    path,
                    "/$id",
                    f"$id {schema_id!r} must end with the file's path '/{relative}' so that relative $refs "
                    "mean the same file on disk and by $id",
                )
            )
    title = schema.get("title")
    if not isinstance(title, str) or not title:
        errors.append(ContractLoadError(path, "/title", "missing title"))
    elif not is_shared and not _PASCAL_CASE.fullmatch(title):
        errors.append(
            ContractLoadError(
                path, "/title", f"title {title!r} must be PascalCase (it names the generated model class)"
            )
        )
    return errors


@dataclass(frozen=True, slots=True)
class _EventName:
    """What the path of an event contract says: ``<domain>/<entity>.<action>.v<major>.schema.json``."""

    domain: str
    entity: str
    action: str
    major_version: int

    @property
    def type(self) -> str:
        return f"{self.domain}.{self.entity}.{self.action}.v{self.major_version}"


def _check_location(path: Path, relative: PurePosixPath) -> tuple[_EventName | None, list[ContractLoadError]]:
    """The event name the path spells (``None`` for shared documents), or why the path is wrong."""
    if len(relative.parts) == 1:
        message = "schema files live in a domain folder (or in common/), not at the top of the tree"
        return None, [ContractLoadError(path, "", message)]
    if relative.parts[0] == SHARED_FOLDER:
        return None, []
    domain = relative.parts[0]
    match = _EVENT_FILE.fullmatch(relative.name.removesuffix(SCHEMA_SUFFIX))
    if len(relative.parts) != 2 or match is None or not _DOMAIN.fullmatch(domain) or keyword.iskeyword(domain):
        message = (
            "event contract files are named <domain>/<entity>.<action>.v<N>.schema.json in lowercase "
            "letters, digits and '_' (e.g. chat/conversation.ended.v1.schema.json)"
        )
        return None, [ContractLoadError(path, "", message)]
    return _EventName(domain, match["entity"], match["action"], int(match["major"])), []


def _read_metadata(
    path: Path, name: _EventName, schema: Mapping[str, Any]
) -> tuple[EventMetadata | None, list[ContractLoadError]]:
    expected_type = name.type
    domain = name.domain
    block = schema.get("x-eventbus")
    if not isinstance(block, dict):
        message = f"missing x-eventbus metadata object (with type {expected_type!r}, exchange, owner)"
        return None, [ContractLoadError(path, "/x-eventbus", message)]

    errors = []

    def text(key: str, default: str | None = None) -> str:
        value = block.get(key, default)
        if isinstance(value, str) and value:
            return value
        message = f"x-eventbus.{key} must be a non-empty string" if key in block else f"missing x-eventbus.{key}"
        errors.append(ContractLoadError(path, f"/x-eventbus/{key}", message))
        return ""

    event_type = text("type")
    if event_type and event_type != expected_type:
        errors.append(
            ContractLoadError(
                path,
                "/x-eventbus/type",
                f"x-eventbus.type is {event_type!r} but the file path says {expected_type!r}",
            )
        )
    exchange = text("exchange")
    if exchange and exchange != domain:
        errors.append(
            ContractLoadError(
                path,
                "/x-eventbus/exchange",
                f"x-eventbus.exchange is {exchange!r} but the contract lives in the {domain!r} domain folder",
            )
        )
    routing_key = text("routing_key", expected_type)
    owner = text("owner")
    compatibility = text("compatibility", "BACKWARD")
    if compatibility and compatibility not in COMPATIBILITY_MODES:
        errors.append(
            ContractLoadError(
                path,
                "/x-eventbus/compatibility",
                f"x-eventbus.compatibility is {compatibility!r}, expected one of {', '.join(COMPATIBILITY_MODES)}",
            )
        )
    if errors:
        return None, errors
    metadata = EventMetadata(
        type=event_type,
        exchange=exchange,
        routing_key=routing_key,
        owner=owner,
        compatibility=compatibility,
        domain=domain,
        entity=name.entity,
        action=name.action,
        major_version=name.major_version,
    )
    return metadata, []


def _drop_duplicate_ids(documents: list[ContractDocument]) -> tuple[list[ContractDocument], list[ContractLoadError]]:
    first_by_id: dict[str, ContractDocument] = {}
    kept, errors = [], []
    for doc in documents:
        first = first_by_id.setdefault(doc.schema_id, doc)
        if first is doc:
            kept.append(doc)
        else:
            message = f"$id {doc.schema_id!r} is also used by {first.relative_path}"
            errors.append(ContractLoadError(doc.path, "/$id", message))
    return kept, errors


def _embedded_ids(documents: list[ContractDocument]) -> dict[str, tuple[str, str]]:
    """Every ``$id`` of a subschema inside a document, for ``$ref``s into bundled documents."""
    files = {doc.schema_id for doc in documents}
    embedded: dict[str, tuple[str, str]] = {}
    for doc in documents:
        for pointer, schema_id in iter_ids(doc.schema, doc.schema_id):
            if schema_id not in files:
                embedded.setdefault(schema_id, (doc.schema_id, pointer))
    return embedded


def _resolve_reaches(
    documents: list[ContractDocument], embedded: Mapping[str, tuple[str, str]]
) -> tuple[list[ContractDocument], list[ContractLoadError]]:
    """Check every ``$ref`` lands somewhere and compute each document's transitive reach."""
    by_id = {doc.schema_id: doc for doc in documents}
    direct: dict[str, set[str]] = {}
    errors = []
    for doc in documents:
        targets = direct.setdefault(doc.schema_id, set())
        for pointer, ref in iter_refs(doc.schema, doc.schema_id):
            target_id, fragment = urldefrag(ref)
            target = by_id.get(target_id)
            node: Any = target.schema if target is not None else None
            if target is None and target_id in embedded:
                document_id, inside = embedded[target_id]
                target, node = by_id[document_id], resolve_pointer(by_id[document_id].schema, inside)[1]
                target_id = document_id
            if target is None:
                message = f"$ref {ref!r} names no schema file in the contracts tree (no file has $id {target_id!r})"
                errors.append(ContractLoadError(doc.path, pointer, message))
                continue
            if not fragment_exists(node, fragment):
                message = f"$ref {ref!r} points at nothing: {target.relative_path} has no '#{fragment}'"
                errors.append(ContractLoadError(doc.path, pointer, message))
                continue
            if target_id != doc.schema_id:
                targets.add(target_id)
    resolved = []
    for doc in documents:
        reached: set[str] = set()
        pending = list(direct[doc.schema_id])
        while pending:
            schema_id = pending.pop()
            if schema_id in reached or schema_id == doc.schema_id:
                continue
            reached.add(schema_id)
            pending.extend(direct[schema_id])
        resolved.append(ContractDocument(doc.path, doc.relative_path, doc.schema, doc.metadata, tuple(sorted(reached))))
    return resolved, errors
