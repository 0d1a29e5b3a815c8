"""The breaking-change rules as data: id, what change it names, and whom that change can break.

Two sides can break when a contract changes (the terms of Confluent Schema Registry, whose
BACKWARD/FORWARD/FULL/NONE modes the contracts declare):

- **consumers** (checked under BACKWARD and FULL): the new contract rejects an event the old one
  accepted, so a consumer that regenerates its bindings parks events still in its queue, replayed
  from a dead-letter queue, or sent by a producer not yet upgraded. Narrowing changes do this.
- **producers** (checked under FORWARD and FULL): the new contract accepts an event the old one
  rejected, so a producer that upgrades first can publish events that consumers still on the old
  contract park. Widening changes do this.

``effect`` below is the usual case; some rules compute it per change (a field added to a closed
object widens it, to an open one narrows it), and inside ``not`` the two sides swap.
``docs/governance.md`` shows the same table; a test keeps them in step.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BREAKING_RULES", "BOTH", "CONSUMERS", "NEITHER", "PRODUCERS", "BreakingRule", "rule"]

CONSUMERS = frozenset({"consumers"})
PRODUCERS = frozenset({"producers"})
BOTH = CONSUMERS | PRODUCERS
NEITHER: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class BreakingRule:
    id: str
    purpose: str
    effect: frozenset[str]


BREAKING_RULES: tuple[BreakingRule, ...] = (
    BreakingRule("CONTRACT_DELETED", "A contract file is gone and no newer major version of the event exists.", BOTH),
    BreakingRule("MAJOR_VERSION_RETIRED", "An old major version is gone; a newer major version of the event exists.",
                 NEITHER),
    BreakingRule("MAJOR_VERSION_STILL_CONSUMED",
                 "A contract is gone while contracts/consumers.json still lists a service reading it (refused in "
                 "every mode).", BOTH),
    BreakingRule("CONTRACT_ADDED", "A new event type or a new major version file: always allowed.", NEITHER),
    BreakingRule("ROUTING_CHANGED", "x-eventbus exchange or routing_key changed: bound queues stop receiving.", BOTH),
    BreakingRule("COMPATIBILITY_CHANGED", "The compatibility mode changed (the change is judged under the old mode).",
                 NEITHER),
    BreakingRule("FIELD_ADDED", "A property was added (widens a closed object, narrows an open one).", PRODUCERS),
    BreakingRule("FIELD_REMOVED", "A property was removed (narrows a closed object, widens an open one).", CONSUMERS),
    BreakingRule("REQUIRED_ADDED", "A property became required.", CONSUMERS),
    BreakingRule("REQUIRED_REMOVED", "A property is no longer required.", PRODUCERS),
    BreakingRule("TYPE_NARROWED", "Fewer JSON types are accepted (number to integer, a type added where none was).",
                 CONSUMERS),
    BreakingRule("TYPE_WIDENED", "More JSON types are accepted (integer to number, null allowed, type dropped).",
                 PRODUCERS),
    BreakingRule("TYPE_CHANGED", "The type changed to an unrelated one (string to integer).", BOTH),
    BreakingRule("ENUM_VALUE_ADDED", "An enum gained a value.", PRODUCERS),
    BreakingRule("ENUM_VALUE_REMOVED", "An enum lost a value.", CONSUMERS),
    BreakingRule("ENUM_ADDED", "A value is now restricted to an enum.", CONSUMERS),
    BreakingRule("ENUM_REMOVED", "A value is no longer restricted to an enum.", PRODUCERS),
    BreakingRule("CONST_CHANGED", "A const value changed.", BOTH),
    BreakingRule("CONST_ADDED", "A value is now pinned by const.", CONSUMERS),
    BreakingRule("CONST_REMOVED", "A value is no longer pinned by const.", PRODUCERS),
    BreakingRule("ADDITIONAL_PROPERTIES_CLOSED", "An object no longer accepts properties it does not list.",
                 CONSUMERS),
    BreakingRule("ADDITIONAL_PROPERTIES_OPENED", "An object now accepts properties it does not list.", PRODUCERS),
    BreakingRule("BOUND_TIGHTENED",
                 "A minimum, maximum, length, item or property count bound, multipleOf or uniqueItems got stricter.",
                 CONSUMERS),
    BreakingRule("BOUND_LOOSENED", "Such a bound got looser or was dropped.", PRODUCERS),
    BreakingRule("PATTERN_ADDED", "A string must now match a pattern.", CONSUMERS),
    BreakingRule("PATTERN_REMOVED", "A string no longer has to match a pattern.", PRODUCERS),
    BreakingRule("PATTERN_CHANGED", "A pattern changed (regular languages are not compared: both sides).", BOTH),
    BreakingRule("FORMAT_ADDED", "A string must now have a format (validators on both ends check formats).",
                 CONSUMERS),
    BreakingRule("FORMAT_REMOVED", "A string no longer has to have a format.", PRODUCERS),
    BreakingRule("FORMAT_CHANGED", "A string's format changed.", BOTH),
    BreakingRule("REF_TARGET_CHANGED",
                 "A $ref names another definition; its content is compared, so only real differences break.",
                 NEITHER),
    BreakingRule("ONEOF_BRANCH_ADDED", "A oneOf gained a branch.", PRODUCERS),
    BreakingRule("ONEOF_BRANCH_REMOVED", "A oneOf lost a branch.", CONSUMERS),
    BreakingRule("ANYOF_BRANCH_ADDED", "An anyOf gained a branch.", PRODUCERS),
    BreakingRule("ANYOF_BRANCH_REMOVED", "An anyOf lost a branch.", CONSUMERS),
    BreakingRule("ALLOF_BRANCH_ADDED", "An allOf gained a branch.", CONSUMERS),
    BreakingRule("ALLOF_BRANCH_REMOVED", "An allOf lost a branch.", PRODUCERS),
    BreakingRule("KEYWORD_CHANGED",
                 "A keyword this check does not reason about (if/then/else, patternProperties, ...) changed: both.",
                 BOTH),
)

_BY_ID = {entry.id: entry for entry in BREAKING_RULES}


def rule(rule_id: str) -> BreakingRule:
    return _BY_ID[rule_id]
