"""``eventbus contracts validate``: every fault of a contracts tree, in one report.

Loading (``_contracts``) stops at what code generation needs; this adds what makes a contract
trustworthy for other teams and languages: a valid draft 2020-12 schema, a description, and
examples that pass the very validation the SDK runs on every message (``jsonschema_rs`` with the
shared documents in a registry and formats checked), so an example in a contract can always be
published.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator

from ._contracts import ContractDocument, collect_contracts
from ._errors import location
from ._refs import escape_pointer

__all__ = ["Problem", "validate_contracts"]

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
EVENTBUS_KEYS = frozenset({"compatibility", "exchange", "owner", "routing_key", "type"})

_METASCHEMA = Draft202012Validator(Draft202012Validator.META_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)


@dataclass(frozen=True, slots=True)
class Problem:
    """One fault in one file, located by JSON pointer (``""`` for the whole file)."""

    path: Path
    pointer: str
    message: str

    def __str__(self) -> str:
        return f"{location(self.path, self.pointer)}: {self.message}"


def validate_contracts(root: Path) -> list[Problem]:
    """Every problem found in the contracts tree at ``root``, grouped by file; empty when all is well."""
    contracts, load_errors = collect_contracts(root)
    problems = [Problem(error.path, error.pointer, error.message) for error in load_errors]
    broken_refs = {error.path for error in load_errors if error.pointer.endswith("/$ref")}
    for doc in contracts.documents:
        schema_problems = _check_metaschema(doc)
        problems.extend(schema_problems)
        problems.extend(_check_documentation(doc))
        if doc.is_shared:
            if "x-eventbus" in doc.schema:
                problems.append(Problem(doc.path, "/x-eventbus", "shared definitions carry no x-eventbus"))
            continue
        problems.extend(_check_metadata_keys(doc))
        # Examples are checked once the schema itself is sound: an unresolvable $ref would even make
        # the validator try the network.
        if not schema_problems and doc.path not in broken_refs:
            problems.extend(_check_examples(doc, contracts.resources_for(doc)))
    unique = dict.fromkeys(problems)  # identical findings from loader and checks are reported once
    return sorted(unique, key=lambda problem: problem.path)


def _check_metaschema(doc: ContractDocument) -> list[Problem]:
    problems = [
        Problem(doc.path, _pointer(error.absolute_path), f"not a valid draft 2020-12 schema: {error.message}")
        for error in sorted(_METASCHEMA.iter_errors(doc.schema), key=lambda e: [str(p) for p in e.absolute_path])
    ]
    if doc.schema.get("$schema") != DRAFT_2020_12:
        problems.append(Problem(doc.path, "/$schema", f"$schema must be {DRAFT_2020_12!r}"))
    return problems


def _check_documentation(doc: ContractDocument) -> list[Problem]:
    problems = []
    description = doc.schema.get("description")
    if not isinstance(description, str) or not description.strip():
        problems.append(
            Problem(doc.path, "/description", "missing description (say what happened and who publishes it)")
        )
    return problems


def _check_metadata_keys(doc: ContractDocument) -> list[Problem]:
    block = doc.schema.get("x-eventbus")
    if not isinstance(block, dict):
        return []  # reported by the loader
    return [
        Problem(
            doc.path,
            f"/x-eventbus/{escape_pointer(key)}",
            f"unknown x-eventbus key {key!r} (known: {', '.join(sorted(EVENTBUS_KEYS))})",
        )
        for key in block
        if key not in EVENTBUS_KEYS
    ]


def _check_examples(doc: ContractDocument, resources: Mapping[str, Mapping[str, Any]]) -> list[Problem]:
    examples = doc.schema.get("examples")
    if not isinstance(examples, list) or not examples:
        return [Problem(doc.path, "/examples", "an event contract needs at least one example payload")]
    try:
        # The same validator the SDK builds in EventContract, so "valid here" means "publishable".
        registry = jsonschema_rs.Registry(list(resources.items())) if resources else None
        validator = jsonschema_rs.validator_for(dict(doc.schema), registry=registry, validate_formats=True)
    except (ValueError, jsonschema_rs.ReferencingError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [Problem(doc.path, "", f"the schema cannot be compiled for validation: {first_line}")]
    problems = []
    for index, example in enumerate(examples):
        for error in validator.iter_errors(example):
            schema_path = "/".join(str(part) for part in error.schema_path)
            problems.append(
                Problem(
                    doc.path,
                    f"/examples/{index}{_pointer(error.instance_path)}",
                    f"example {index} does not match the schema: {error.message} (schema #/{schema_path})",
                )
            )
    return problems


def _pointer(parts: Any) -> str:
    return "".join(f"/{escape_pointer(str(part))}" for part in parts)
