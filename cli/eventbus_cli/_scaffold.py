"""The files ``eventbus init`` and ``eventbus new event`` write; text in, text out, no I/O.

A new contracts repository must pass its own gate from its first commit (lint, breaking, codegen
drift), so the skeletons here are written to the house rules (docs/governance.md): described
properties, an example, closed objects, ``$id`` under the configured base.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["EventName", "ci_workflow", "config_file", "next_major", "parse_event_type", "pre_commit_config",
           "python_package_project", "readme", "skeleton"]

_EVENT_TYPE = re.compile(r"(?P<domain>[a-z][a-z0-9_]*)\.(?P<entity>[a-z][a-z0-9_]*)\.(?P<action>[a-z][a-z0-9_]*)"
                         r"\.v(?P<major>[1-9][0-9]*)")
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


@dataclass(frozen=True)
class EventName:
    domain: str
    entity: str
    action: str
    major: int

    @property
    def type(self) -> str:
        return f"{self.domain}.{self.entity}.{self.action}.v{self.major}"

    @property
    def path(self) -> str:
        """The file inside the contracts folder."""
        return f"{self.domain}/{self.entity}.{self.action}.v{self.major}.schema.json"

    @property
    def title(self) -> str:
        return "".join(word.capitalize() for word in f"{self.entity}_{self.action}".split("_") if word)


def parse_event_type(text: str) -> EventName:
    """``DOMAIN.ENTITY.ACTION.vN`` (lower_snake_case words), or ``ValueError`` saying what is wrong."""
    match = _EVENT_TYPE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not DOMAIN.ENTITY.ACTION.vN in lower_snake_case (e.g. billing.invoice.paid.v1)")
    return EventName(match["domain"], match["entity"], match["action"], int(match["major"]))


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def skeleton(name: EventName, base_id: str, owner: str) -> str:
    """A contract that passes lint: one required id and a time, described, with an example."""
    subject = f"{name.entity}_id"
    document = {
        "$schema": SCHEMA_DIALECT,
        "$id": base_id + name.path,
        "title": name.title,
        "description": f"TODO: what happened when a {name.entity} was {name.action.replace('_', ' ')}, "
                       "who publishes it and what consumers need from it.",
        "x-eventbus": {
            "type": name.type,
            "exchange": name.domain,
            "routing_key": name.type,
            "owner": owner,
            "compatibility": "BACKWARD",
        },
        "type": "object",
        "additionalProperties": False,
        "required": [subject, "occurred_at"],
        "properties": {
            subject: {
                "description": f"Identifier of the {name.entity}.",
                "type": "string",
                "minLength": 1,
                "maxLength": 128,
            },
            "occurred_at": {
                "description": "When it happened (RFC 3339, with an offset).",
                "type": "string",
                "format": "date-time",
            },
        },
        "examples": [{subject: f"{name.entity}_1", "occurred_at": "2026-01-01T12:00:00Z"}],
    }
    return _dump(document)


def next_major(previous: dict[str, Any], previous_name: EventName, name: EventName, base_id: str | None) -> str:
    """``previous`` as the next major ``name``: same fields, new identity (``$id``, type, routing key)."""
    document = copy.deepcopy(previous)
    old_id = str(document.get("$id", ""))
    base = base_id or (old_id[: -len(previous_name.path)] if old_id.endswith(previous_name.path) else "")
    document["$id"] = base + name.path
    metadata = dict(document.get("x-eventbus") or {})
    metadata.update(type=name.type, exchange=name.domain, routing_key=name.type)
    document["x-eventbus"] = metadata
    return _dump(document)


def config_file(name: str, base_id: str, python_package: str, npm_package: str, go_module: str) -> str:
    return f'''# The project config every `eventbus` command reads (found by walking up from the working directory).
version = 1
contracts = "contracts"
base_id = "{base_id}"

[python]
package = "{python_package}"
out = "generated/python"

[typescript]
package = "{npm_package}"
out = "generated/typescript"

[go]
module = "{go_module}"
out = "generated/go"

# Contract governance: every lint and breaking rule on (`eventbus contracts lint --list-rules`).
[lint]
disable = []

[breaking]
disable = []
'''


_GATE = [
    ("Validate", "eventbus contracts validate"),
    ("Lint", "eventbus contracts lint --format github"),
    ("Breaking changes", "eventbus contracts breaking --against \"origin/${{ github.base_ref || 'main' }}\" "
                         "--format github"),
    ("Generated Python is up to date", "eventbus codegen python --check"),
    ("Generated TypeScript is up to date", "eventbus codegen typescript --check"),
    ("Generated Go is up to date", "eventbus codegen go --check"),
]


def ci_workflow() -> str:
    """A GitHub Actions workflow running the gate on every push and pull request."""
    steps = "\n".join(f"      - name: {title}\n        run: {command}" for title, command in _GATE)
    return f'''# The contracts gate: lint, breaking changes against the base branch, codegen drift.
name: contracts
on:
  push:
  pull_request:
jobs:
  gate:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0   # breaking compares with the base branch
      - uses: actions/setup-python@v5
        with:
          python-version: "3.12"
      - run: pip install "eventbus[codegen]"
{steps}
'''


def pre_commit_config() -> str:
    """pre-commit hooks: lint the contracts and refuse stale generated code before a commit."""
    hooks = [
        ("eventbus-lint", "lint the contracts", "eventbus contracts lint"),
        ("eventbus-codegen-python", "generated Python is up to date", "eventbus codegen python --check"),
        ("eventbus-codegen-typescript", "generated TypeScript is up to date", "eventbus codegen typescript --check"),
        ("eventbus-codegen-go", "generated Go is up to date", "eventbus codegen go --check"),
    ]
    entries = "\n".join(
        f"      - id: {hook_id}\n        name: {name}\n        entry: {entry}\n        language: system\n"
        f"        pass_filenames: false\n        files: ^(contracts|generated)/"
        for hook_id, name, entry in hooks
    )
    return f"# pre-commit install  (https://pre-commit.com)\nrepos:\n  - repo: local\n    hooks:\n{entries}\n"


def python_package_project(package: str) -> str:
    """``pyproject.toml`` beside the generated package, so services can ``pip install`` it."""
    return f'''# Packaging of the generated Python package (the package itself is written by 'eventbus codegen python').
[build-system]
requires = ["hatchling>=1.24"]
build-backend = "hatchling.build"

[project]
name = "{package.replace("_", "-")}"
version = "0.1.0"
description = "Event models and contracts generated from the contracts in this repository."
requires-python = ">=3.11"
dependencies = ["eventbus"]

[tool.hatch.build.targets.wheel]
packages = ["{package}"]
'''


def readme(name: str) -> str:
    return f'''# {name}

Event contracts (JSON Schema 2020-12) in `contracts/`, and the bindings generated from them in
`generated/` (Python, TypeScript, Go): never edit those by hand.

    eventbus new event DOMAIN.ENTITY.ACTION.v1      # a new contract, then fill in its fields
    eventbus contracts lint                          # the house rules
    eventbus codegen python && eventbus codegen typescript && eventbus codegen go
    eventbus new event DOMAIN.ENTITY.ACTION.v2 --from DOMAIN.ENTITY.ACTION.v1   # a breaking change

`eventbus.toml` says where everything goes; services install the Python package with
`pip install ./generated/python`. CI (`.github/workflows/contracts.yml`) and the pre-commit
hooks (`.pre-commit-config.yaml`) run the same gate.
'''
