"""``eventbus contracts breaking --against REF``: every contract against its version at a git ref.

Contracts are paired by file path, which spells event type and major version: a new major
version is a new file and so always allowed, and a file that disappears is either retired (a
newer major exists) or deleted (none does). Each change is judged under the compatibility mode
the contract had at the ref: the promise already made to consumers, so a commit cannot loosen
the mode and break the contract in one go. The consumers file (as it is now) names who would
be hit, and a contract some registered service still reads is never removed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from tempfile import TemporaryDirectory

from eventbus_codegen._contracts import (
    COMPATIBILITY_MODES,
    ContractDocument,
    ContractSet,
    _check_location,
    collect_contracts,
)

from .._config import GovernanceConfig
from .._consumers import ConsumerRegistry, load_consumers
from .._findings import Finding, Locator
from .._schema_index import SchemaIndex
from ._compare import SchemaDiff
from ._git import tree_at
from ._rules import BREAKING_RULES, rule

__all__ = ["breaks_under", "check_breaking", "compare_trees"]

_Event = tuple[str, str, str, int]  # domain, entity, action, major version


def check_breaking(root: Path, against: str, config: GovernanceConfig | None = None) -> list[Finding]:
    """Every change from ``against`` to the working tree at ``root``; ``Finding.is_error`` marks breaking ones."""
    config = config or GovernanceConfig()
    config.check_rule_ids("breaking", [entry.id for entry in BREAKING_RULES])
    with TemporaryDirectory(prefix="eventbus-breaking-") as scratch:
        before_root = tree_at(root, against, Path(scratch))
        return compare_trees(before_root, root, config)


def compare_trees(before_root: Path, after_root: Path, config: GovernanceConfig | None = None) -> list[Finding]:
    """The changes between two contracts trees on disk (``check_breaking`` without git)."""
    config = config or GovernanceConfig()
    before, _ = collect_contracts(before_root)
    after, _ = collect_contracts(after_root)
    judge = _Judge(before, after, load_consumers(after_root))
    findings = [finding for finding in judge.findings() if finding.rule not in config.breaking.disable]
    return sorted(findings, key=Finding.sort_key)


def breaks_under(mode: str, effect: frozenset[str]) -> bool:
    """Whether a change with ``effect`` (``consumers``/``producers``) is breaking under ``mode``."""
    if mode == "BACKWARD":
        return "consumers" in effect
    if mode == "FORWARD":
        return "producers" in effect
    if mode == "FULL":
        return bool(effect)
    return False


class _Judge:
    def __init__(self, before: ContractSet, after: ContractSet, consumers: ConsumerRegistry) -> None:
        self.before, self.after = before, after
        self.consumers = consumers
        self.diff = SchemaDiff(SchemaIndex(before), SchemaIndex(after))
        self.locator = Locator()
        self.old_events = _events(before)
        self.new_events = _events(after)

    def findings(self) -> Iterator[Finding]:
        new_by_path = {doc.relative_path: doc for doc in self.new_events.values()}
        for event, old in sorted(self.old_events.items()):
            new = new_by_path.get(old.relative_path)
            if new is None:
                yield from self._gone(event, old)
            else:
                yield from self._changed(event, old, new)
        old_paths = {doc.relative_path for doc in self.old_events.values()}
        for event, new in sorted(self.new_events.items()):
            if new.relative_path not in old_paths:
                yield self._finding("CONTRACT_ADDED", new.path, "", _type(event), "/", "new contract",
                                    frozenset(), _mode(new))

    def _gone(self, event: _Event, old: ContractDocument) -> Iterator[Finding]:
        domain, entity, action, major = event
        newer = sorted(e[3] for e in self.new_events if e[:3] == (domain, entity, action) and e[3] > major)
        path = self.after.root / old.relative_path
        mode = _mode(old)
        if newer:
            yield self._finding("MAJOR_VERSION_RETIRED", path, "", _type(event), "/",
                                f"retired; v{newer[-1]} replaces it", frozenset(), mode)
        else:
            yield self._finding("CONTRACT_DELETED", path, "", _type(event), "/",
                                "contract deleted with no newer major version to replace it",
                                rule("CONTRACT_DELETED").effect, mode)
        readers = self.consumers.readers_of(_type(event))
        if readers and self.consumers.path is not None:
            names = ", ".join(reader.label() for reader in readers)
            yield self._finding("MAJOR_VERSION_STILL_CONSUMED", self.consumers.path, readers[0].pointer,
                                _type(event), "/",
                                f"still read by {names}: move them to a newer version and update "
                                "consumers.json first", rule("MAJOR_VERSION_STILL_CONSUMED").effect, mode,
                                refused=True)

    def _changed(self, event: _Event, old: ContractDocument, new: ContractDocument) -> Iterator[Finding]:
        mode = _mode(old)
        event_type = _type(event)
        old_meta, new_meta = _raw_metadata(old), _raw_metadata(new)
        for key in ("exchange", "routing_key"):
            if old_meta.get(key) != new_meta.get(key):
                yield self._finding("ROUTING_CHANGED", new.path, f"/x-eventbus/{key}", event_type,
                                    f"/x-eventbus/{key}", f"{key} {old_meta.get(key)!r} became {new_meta.get(key)!r}",
                                    rule("ROUTING_CHANGED").effect, mode)
        if _mode(new) != mode:
            yield self._finding("COMPATIBILITY_CHANGED", new.path, "/x-eventbus/compatibility", event_type,
                                "/x-eventbus/compatibility",
                                f"compatibility {mode} became {_mode(new)}; this change is still judged under {mode}",
                                frozenset(), mode)
        old_root = self.diff.before.root(old)
        new_root = self.diff.after.root(new)
        for change in self.diff.compare(old_root, new_root):
            yield self._finding(change.rule, change.where.doc.path, change.where.pointer, event_type, change.path,
                                change.message, change.effect, mode)

    def _finding(self, rule_id: str, path: Path, pointer: str, event_type: str, change_path: str, what: str,
                 effect: frozenset[str], mode: str, *, refused: bool = False) -> Finding:
        breaking = refused or breaks_under(mode, effect)
        readers = [reader.label() for reader in self.consumers.readers_of(event_type)] if effect else []
        if refused:
            verdict = "refused in every compatibility mode"
        elif breaking:
            verdict = f"breaks {_who(effect)} under {mode}"
        elif effect:
            verdict = f"allowed under {mode} (would break {_who(effect)})"
        else:
            verdict = "compatible"
        if breaking and readers and rule_id != "MAJOR_VERSION_STILL_CONSUMED":
            verdict += f"; registered consumers affected: {', '.join(readers)}"
        details = {
            "event_type": event_type,
            "change_path": change_path,
            "effect": sorted(effect),
            "mode": mode,
            "breaking": breaking,
            "consumers": readers,
        }
        return self.locator.finding(rule_id, path, pointer, f"{event_type} {change_path}: {what}; {verdict}",
                                    level="error" if breaking else "notice", details=details)


def _events(contracts: ContractSet) -> dict[_Event, ContractDocument]:
    """Event documents by the name their path spells, whether or not their metadata loaded."""
    events = {}
    for doc in contracts.documents:
        if doc.is_shared:
            continue
        name, _ = _check_location(doc.path, doc.relative_path)
        if name is not None:
            events[(name.domain, name.entity, name.action, name.major_version)] = doc
    return events


def _type(event: _Event) -> str:
    domain, entity, action, major = event
    return f"{domain}.{entity}.{action}.v{major}"


def _raw_metadata(doc: ContractDocument) -> dict[str, object]:
    block = doc.schema.get("x-eventbus")
    return block if isinstance(block, dict) else {}


def _mode(doc: ContractDocument) -> str:
    mode = _raw_metadata(doc).get("compatibility", "BACKWARD")
    return mode if mode in COMPATIBILITY_MODES else "BACKWARD"


def _who(effect: frozenset[str]) -> str:
    return " and ".join(sorted(effect))
