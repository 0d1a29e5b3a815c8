"""The lint rules as data (id, one-line purpose, check) and the runner that applies them.

Rule ids are stable SCREAMING_SNAKE names: configs disable them by id and CI logs quote them, so
an id is never renamed or reused. ``docs/governance.md`` has the same table; a test keeps the two
in step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from eventbus_codegen._contracts import SCHEMA_SUFFIX

from .._config import GovernanceConfig
from .._consumers import CONSUMERS_FILE
from .._errors import GovernanceError
from .._findings import Finding, Locator
from . import _identity_checks as identity
from . import _schema_checks as schema
from ._context import Issue, LintContext

__all__ = ["LINT_RULES", "LintRule", "lint_contracts"]


@dataclass(frozen=True, slots=True)
class LintRule:
    id: str
    purpose: str
    check: Callable[[LintContext], Iterator[Issue]]


LINT_RULES: tuple[LintRule, ...] = (
    LintRule("VALID_JSON", "Every schema file is a JSON object with no duplicate keys.", identity.check_json),
    LintRule("FILE_PATH_MATCHES_TYPE",
             "An event file is <domain>/<entity>.<action>.v<N>.schema.json and x-eventbus.type spells the same.",
             identity.check_file_path),
    LintRule("METADATA_COMPLETE",
             "x-eventbus states type, exchange, routing_key, owner and compatibility explicitly, and nothing else.",
             identity.check_metadata),
    LintRule("ROUTING_MATCHES_TYPE",
             "x-eventbus.exchange is the domain folder and routing_key is the event type.", identity.check_routing),
    LintRule("ID_MATCHES_PATH",
             "$id is an absolute URI ending with the file's path, under the tree's one base URI, and unique.",
             identity.check_id),
    LintRule("TITLE_PASCAL_CASE", "title is PascalCase: it names the generated types.", identity.check_title),
    LintRule("CONTRACT_DESCRIBED", "Every schema file has a description.", schema.check_contract_described),
    LintRule("PROPERTY_DESCRIBED", "Every property and every $defs entry has a description.",
             schema.check_property_described),
    LintRule("EXAMPLES_PRESENT", "An event contract has at least one example payload.", schema.check_examples_present),
    LintRule("EXAMPLES_VALID", "Every example passes the validation the SDK runs, formats included.",
             schema.check_examples_valid),
    LintRule("NO_UNCONSTRAINED_SCHEMA", "No subschema accepts any value ({} or true where a value is read).",
             schema.check_unconstrained),
    LintRule("ADDITIONAL_PROPERTIES_EXPLICIT", "Every object schema says whether it is open or closed.",
             schema.check_additional_properties),
    LintRule("ENUM_VALUES_SNAKE_CASE", "String enum values are lower_snake_case, like every other enum.",
             schema.check_enum_values),
    LintRule("PROPERTY_NAMES_SNAKE_CASE", "Property names are lower_snake_case.", schema.check_property_names),
    LintRule("DATE_TIME_FORMAT", "A property named like a time (*_at, *_time, ...) is a string with format date-time.",
             schema.check_date_time_format),
    LintRule("REF_STAYS_IN_TREE", "Every $ref lands inside the contracts tree, never on another host or folder.",
             schema.check_ref_stays_in_tree),
    LintRule("REF_RESOLVES", "Every $ref names an existing file and a pointer or anchor in it.",
             schema.check_ref_resolves),
    LintRule("CONSUMERS_FILE_VALID",
             "contracts/consumers.json follows its format and names only event types that have a contract.",
             identity.check_consumers_file),
)


def lint_contracts(
    root: Path, paths: Sequence[Path] = (), config: GovernanceConfig | None = None
) -> list[Finding]:
    """Findings of every enabled rule in the files ``paths`` name (all of ``root`` by default), sorted."""
    config = config or GovernanceConfig()
    config.check_rule_ids("lint", [rule.id for rule in LINT_RULES])
    selected = _selection(root, paths)
    context = LintContext(root, config.base_id)
    locator = Locator()
    findings = []
    for rule in LINT_RULES:
        if rule.id in config.lint.disable:
            continue
        for path, pointer, message in rule.check(context):
            if _is_selected(path, selected) and not config.is_ignored(path):
                findings.append(locator.finding(rule.id, path, pointer, message))
    return sorted(set(findings), key=Finding.sort_key)


def _selection(root: Path, paths: Iterable[Path]) -> list[Path]:
    resolved_root = root.resolve()
    selected = []
    for path in paths:
        resolved = path.resolve()
        if not path.exists():
            raise GovernanceError(path, "", "no such file or folder")
        if resolved != resolved_root and resolved_root not in resolved.parents:
            raise GovernanceError(path, "", f"not inside the contracts tree {root.as_posix()}")
        if resolved.is_file() and not (resolved.name.endswith(SCHEMA_SUFFIX) or resolved.name == CONSUMERS_FILE):
            raise GovernanceError(path, "", f"not a contract: lint reads *{SCHEMA_SUFFIX} and {CONSUMERS_FILE}")
        selected.append(resolved)
    return selected or [resolved_root]


def _is_selected(path: Path, selected: list[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved == chosen or chosen in resolved.parents for chosen in selected)
