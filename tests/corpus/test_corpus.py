"""The type mapping on ≥ 30 schemas: ours plus public GitHub webhook schemas, in all three languages.

For each schema: the generated Python, TypeScript and Go compile (tsc --strict, go vet), and each
of the schema's own examples round-trips — decoded into the language's typed value (validated)
and encoded again — to the same JSON value. Date-times count as unchanged when they name the same
instant: Python (pydantic) and Go (time.Time) re-spell ``.000`` fractions, which no reader of an
RFC 3339 time can tell apart; the strict count is reported beside it.

The report (``-s`` shows it) says how many schemas map fully per language and what does not yet;
``KNOWN_GAPS`` must name exactly the schemas that do not, so an improvement or a regression both
show up here.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from eventbus_codegen import generate_go, generate_typescript, load_contracts, write_go, write_typescript
from tests.corpus import python_side
from tests.corpus.corpus import build_corpus
from tests.toolchain.harnesses import HARNESS_GO_MODULE, build_go_harness, build_node_harness

pytestmark = pytest.mark.polyglot

LANGUAGES = ("python", "typescript", "go")
# Schemas whose examples do not yet round-trip in a language, and why. Must match the findings.
KNOWN_GAPS: dict[str, dict[str, str]] = {
    "python": {
        "github/dependabot_alert.created.v1.schema.json": (
            "datamodel-code-generator merges allOf [dependabot-alert, {dismissed_at: {type: null}}] into a "
            "required datetime, so the model rejects the null the schema demands"
        ),
    },
    "typescript": {},
    "go": {},
}


@dataclass
class Outcome:
    """One schema in one language: how its examples came back."""

    exact: int = 0
    instants: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def full(self) -> bool:
        return not self.problems


@dataclass
class Report:
    origins: dict[str, str]
    outcomes: dict[tuple[str, str], Outcome]

    def gaps(self, language: str) -> dict[str, str]:
        return {schema: "; ".join(o.problems[:2]) for (schema, lang), o in sorted(self.outcomes.items())
                if lang == language and not o.full}

    def text(self) -> str:
        lines = [f"corpus: {len(self.origins)} schemas "
                 f"({sum(1 for o in self.origins.values() if o.startswith('@octokit'))} public GitHub webhook schemas)"]
        for language in LANGUAGES:
            mine = [o for (_, lang), o in self.outcomes.items() if lang == language]
            strict = sum(1 for o in mine if o.full and not o.instants)
            lines.append(f"{language:>10}: {sum(o.full for o in mine)}/{len(mine)} map fully "
                         f"({strict} byte-for-byte equal JSON values, the rest equal up to date-time spelling)")
            lines += [f"{'':>12}{schema}: {why}" for schema, why in self.gaps(language).items()]
        return "\n".join(lines)


def _instant(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None and "T" in text.upper() else None


def compare(original: Any, result: Any, path: str = "") -> tuple[bool, list[str]]:
    """(a date-time was re-spelt, differences): JSON values compared, date-time strings as instants."""
    if isinstance(original, dict) and isinstance(result, dict):
        respelt, problems = False, []
        for key in sorted(set(original) | set(result)):
            if key not in result:
                problems.append(f"{path}/{key} dropped")
            elif key not in original:
                problems.append(f"{path}/{key} added")
            else:
                child_respelt, child_problems = compare(original[key], result[key], f"{path}/{key}")
                respelt, problems = respelt or child_respelt, problems + child_problems
        return respelt, problems
    if isinstance(original, list) and isinstance(result, list) and len(original) == len(result):
        respelt, problems = False, []
        for index, (left, right) in enumerate(zip(original, result, strict=True)):
            child_respelt, child_problems = compare(left, right, f"{path}/{index}")
            respelt, problems = respelt or child_respelt, problems + child_problems
        return respelt, problems
    if (original == result and type(original) is type(result)) or (
        isinstance(original, int | float) and isinstance(result, int | float) and not isinstance(original, bool)
        and not isinstance(result, bool) and original == result
    ):
        return False, []
    if isinstance(original, str) and isinstance(result, str):
        left, right = _instant(original), _instant(result)
        if left is not None and right is not None and left == right and left.utcoffset() == right.utcoffset():
            return True, []
    return False, [f"{path or '/'}: {json.dumps(original)[:60]} became {json.dumps(result)[:60]}"]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    build = tmp_path_factory.mktemp("corpus")
    root = build / "contracts"
    origins = build_corpus(root)
    contracts = load_contracts(root)
    events = {doc.relative_path.as_posix(): doc for doc in contracts.events}
    items = [
        {"schema": relative, "type": doc.event_metadata.type, "data": example}
        for relative, doc in sorted(events.items())
        for example in doc.schema["examples"]
    ]
    items_file = build / "items.json"
    items_file.write_text(json.dumps([{"type": i["type"], "data": i["data"]} for i in items]), encoding="utf-8")

    write_typescript(generate_typescript(root, "corpus-contracts"), build / "typescript")
    write_go(generate_go(root, HARNESS_GO_MODULE), build / "go")
    results: dict[str, list[dict[str, Any]]] = {}
    for language, harness in (
        ("typescript", build_node_harness(build / "typescript", build / "node-build")),
        ("go", build_go_harness(build / "go", build / "go-build")),
    ):
        output = subprocess.run([*harness, "roundtrip", str(items_file)], capture_output=True, text=True, timeout=120)
        assert output.returncode == 0, output.stderr
        results[language] = json.loads(output.stdout)
        assert len(results[language]) == len(items)

    generated = python_side.generate_all(root, sorted(events))
    python_results = []
    for relative in sorted(events):
        source, error = generated[relative]
        if source is None:
            failed = {"ok": False, "error": f"generation: {error}"}
            python_results += [failed] * len(events[relative].schema["examples"])
        else:
            python_results += python_side.round_trip(contracts, events[relative], source)
    results["python"] = python_results

    outcomes = {(schema, language): Outcome() for schema in events for language in LANGUAGES}
    for language, language_results in results.items():
        for item, result in zip(items, language_results, strict=True):
            outcome = outcomes[(item["schema"], language)]
            if not result["ok"]:
                outcome.problems.append(result["error"][:200])
                continue
            respelt, problems = compare(item["data"], result["data"])
            outcome.problems += problems[:3]
            if not problems:
                outcome.instants += respelt
                outcome.exact += not respelt
    return Report(origins, outcomes)


def test_the_corpus_has_at_least_30_schemas_most_of_them_public(report: Report) -> None:
    public = [origin for origin in report.origins.values() if origin.startswith("@octokit")]
    assert len(report.origins) >= 30
    assert len(public) >= 26


@pytest.mark.parametrize("language", LANGUAGES)
def test_examples_round_trip_unchanged(report: Report, language: str) -> None:
    print(f"\n{report.text()}")
    assert report.gaps(language).keys() == KNOWN_GAPS[language].keys(), report.text()
