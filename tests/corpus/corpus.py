"""The type-mapping corpus: our contracts plus public event schemas nobody on this project wrote.

Public part: the GitHub webhook event schemas of ``@octokit/webhooks-schemas`` (one draft-07
document with a definition per event and action, maintained by the Octokit community) with the
example payloads of ``@octokit/webhooks-examples`` (real GitHub deliveries), both installed from
npm by ``tests/toolchain``. Each chosen event/action becomes a contract of a scratch contracts
tree (``github/<event>.<action>.v1.schema.json``, a ``$ref`` into the shared document, its
examples those payloads that validate), so the corpus runs through exactly the code path our own
contracts take.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema_rs

from eventbus_codegen._names import pascal_case

ROOT = Path(__file__).resolve().parents[2]
OCTOKIT = ROOT / "tests" / "toolchain" / "node_modules" / "@octokit"
TYPEMAP = ROOT / "tests" / "codegen" / "typemap_contracts"
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
CORPUS_ID = "https://corpus.eventbus.example/contracts"
SHARED = "common/octokit.schema.json"
_NAME = re.compile(r"[a-z][a-z0-9_]*")


def build_corpus(root: Path, *, github_events: int = 30, examples_per_event: int = 3) -> dict[str, str]:
    """Write the corpus contracts tree at ``root``; return where each contract came from (path → origin)."""
    origins: dict[str, str] = {}
    for source, label in ((ROOT / "contracts", "eventbus contracts/"), (TYPEMAP, "tests/codegen/typemap_contracts/")):
        for path in sorted(source.rglob("*.schema.json")):
            target = root / path.relative_to(source)
            if target.exists():
                continue  # the typemap fixture shares common/ with the repository
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
            if path.relative_to(source).parts[0] != "common":
                origins[target.relative_to(root).as_posix()] = label
    origins.update(_github(root, github_events, examples_per_event))
    return origins


def _github(root: Path, limit: int, per_event: int) -> dict[str, str]:
    schema = json.loads((OCTOKIT / "webhooks-schemas" / "schema.json").read_text(encoding="utf-8"))
    examples = json.loads((OCTOKIT / "webhooks-examples" / "api.github.com" / "index.json").read_text(encoding="utf-8"))
    shared = {
        "$schema": DRAFT_2020_12,
        "$id": f"{CORPUS_ID}/{SHARED}",
        "title": "Octokit webhooks",
        "description": "GitHub webhook payloads, from @octokit/webhooks-schemas.",
        "definitions": _strip_nested_schema(schema["definitions"]),
    }
    (root / "common").mkdir(parents=True, exist_ok=True)
    (root / SHARED).write_text(json.dumps(shared, indent=1), encoding="utf-8")
    registry = jsonschema_rs.Registry([(shared["$id"], shared)])
    origins: dict[str, str] = {}
    for event in sorted(examples, key=lambda e: e["name"]):
        if len(origins) >= limit:
            break
        by_action: dict[str, list[Any]] = {}
        for payload in event["examples"]:
            by_action.setdefault(payload.get("action", "event"), []).append(payload)
        for action, payloads in sorted(by_action.items()):
            definition = f"{event['name']}${action}"
            usable_name = _NAME.fullmatch(event["name"]) and _NAME.fullmatch(action)
            if definition not in schema["definitions"] or not usable_name:
                continue
            reference = f"../{SHARED}#/definitions/{definition}"
            validator = jsonschema_rs.validator_for(
                {"$schema": DRAFT_2020_12, "$ref": f"{CORPUS_ID}/{SHARED}#/definitions/{definition}"},
                registry=registry, validate_formats=True,
            )
            valid = [payload for payload in payloads if validator.is_valid(payload)][:per_event]
            if not valid:
                continue
            relative = f"github/{event['name']}.{action}.v1.schema.json"
            contract = {
                "$schema": DRAFT_2020_12,
                "$id": f"{CORPUS_ID}/{relative}",
                "title": pascal_case(f"{event['name']}_{action}"),
                "description": f"GitHub webhook {event['name']} ({action}), from @octokit/webhooks-schemas.",
                "x-eventbus": {"type": f"github.{event['name']}.{action}.v1", "exchange": "github",
                               "owner": "github", "compatibility": "NONE"},
                "$ref": reference,
                "examples": valid,
            }
            (root / "github").mkdir(exist_ok=True)
            (root / relative).write_text(json.dumps(contract, indent=1), encoding="utf-8")
            origins[relative] = f"@octokit/webhooks-schemas#/definitions/{definition}"
            break  # one action per event: more kinds of events beat more actions of one
    return origins


def _strip_nested_schema(node: Any) -> Any:
    """Drop the ``$schema`` every octokit definition repeats: only a document root may say which draft it is."""
    if isinstance(node, dict):
        return {key: _strip_nested_schema(value) for key, value in node.items() if key != "$schema"}
    if isinstance(node, list):
        return [_strip_nested_schema(item) for item in node]
    return node
