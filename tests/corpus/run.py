"""Run the type-mapping corpus in Python, TypeScript and Go, with the baselines, and print the table.

    python -m tests.corpus.run --all              every schema (a few minutes; Python modules are cached)
    python -m tests.corpus.run --sample 40        every n-th schema, about 40 of them (what CI runs)
    python -m tests.corpus.run --all --no-cache   measure Python generation without the cache

For every schema: generate (the language's generator, warnings allowed), compile (Python: import;
TypeScript: ``tsc --strict`` of one package holding every contract; Go: ``go vet`` + build of one
module), round-trip every valid payload (decode into the typed value, validated, and encode it
again: the same JSON value, a date-time re-spelt as the same instant allowed) and check every
must-reject payload is rejected. The baseline is datamodel-code-generator alone.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from eventbus_codegen import CodegenError, generate_go, generate_typescript, load_contracts, write_go, write_typescript
from eventbus_codegen._bundle import bundle_contract
from tests.corpus import python_side
from tests.corpus.corpus import Entry, build_corpus
from tests.corpus.npm_baselines import run_baselines
from tests.toolchain.harnesses import HARNESS_GO_MODULE, build_go_harness, build_node_harness

LANGUAGES = ("python", "typescript", "go")
BASELINES = ("datamodel-code-generator", "json-schema-to-typescript", "quicktype")


@dataclass
class Outcome:
    """One schema in one language (or baseline)."""

    generated: bool = False
    compiled: bool = False
    exact: int = 0
    respelt: int = 0
    rejected: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def round_tripped(self) -> int:
        return self.exact + self.respelt


@dataclass
class Report:
    entries: dict[str, Entry]
    outcomes: dict[tuple[str, str], Outcome]
    python_seconds: float = 0.0
    python_cpu_seconds: float = 0.0

    def gaps(self, language: str) -> dict[str, str]:
        """Schemas whose valid payloads do not all round-trip (or whose must-reject ones pass) in ``language``."""
        gaps = {}
        for relative, entry in self.entries.items():
            outcome = self.outcomes[(relative, language)]
            if outcome.round_tripped < len(entry.valid) or outcome.rejected < len(entry.reject):
                gaps[relative] = "; ".join(outcome.problems[:2]) or "not generated"
        return gaps

    def table(self) -> str:
        schemas = len(self.entries)
        payloads = sum(len(e.valid) for e in self.entries.values())
        rejects = sum(len(e.reject) for e in self.entries.values())
        lines = [
            f"corpus: {schemas} schemas, {payloads} valid payloads, {rejects} must-reject payloads",
            "",
            "| | generates | compiles | valid payloads round-tripped (exact + date-time re-spelt) "
            "| must-reject rejected |",
            "|---|---:|---:|---:|---:|",
        ]
        for name in (*LANGUAGES, *BASELINES):
            mine = [(self.entries[r], o) for (r, n), o in self.outcomes.items() if n == name]
            generated = sum(o.generated for _, o in mine)
            compiled = sum(o.compiled for _, o in mine)
            exact = sum(o.exact for _, o in mine)
            respelt = sum(o.respelt for _, o in mine)
            rejected = f"{sum(o.rejected for _, o in mine)}/{rejects}" if name in LANGUAGES else "(no validation)"
            label = f"eventbus {name}" if name in LANGUAGES else {
                "datamodel-code-generator": "datamodel-code-generator alone",
                "json-schema-to-typescript": "json-schema-to-typescript (types only: payload assignable)",
                "quicktype": "quicktype Go"}[name]
            lines.append(f"| {label} | {generated}/{schemas} | {compiled}/{schemas} | "
                         f"{exact + respelt}/{payloads} ({exact} + {respelt}) | {rejected} |")
        lines.append("")
        lines.append(f"Python generation (eventbus, {schemas} schemas, 2 processes): {self.python_seconds:.0f} s "
                     f"wall clock, {self.python_cpu_seconds:.0f} s CPU")
        for language in LANGUAGES:
            gaps = self.gaps(language)
            lines.append(f"{language}: {len(gaps)} schemas with a gap")
            lines += [f"    {schema}: {why[:220]}" for schema, why in gaps.items()]
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


def _score(outcome: Outcome, payloads: list[Any], results: list[dict[str, Any]]) -> None:
    for payload, result in zip(payloads, results, strict=True):
        if not result["ok"]:
            outcome.problems.append(result["error"][:200])
            continue
        respelt, problems = compare(payload, result["data"])
        outcome.problems += problems[:3]
        if not problems:
            outcome.respelt += respelt
            outcome.exact += not respelt


def _generate_without(root: Path, generate: Any) -> tuple[Any, set[str]]:
    """Generate the package; a contract the generator refuses is left out (and reported), the rest go on."""
    failed: set[str] = set()
    while True:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return generate(root), failed
        except CodegenError as exc:
            relative = exc.path.resolve().relative_to(root.resolve()).as_posix()
            if relative in failed or not (root / relative).is_file() or relative.startswith("common/"):
                raise
            failed.add(relative)
            (root / relative).rename(root / f"{relative}.refused")


def _polyglot(build: Path, root: Path, entries: dict[str, Entry], outcomes: dict[tuple[str, str], Outcome]) -> None:
    items = []
    for relative, entry in entries.items():
        items += [{"schema": relative, "type": entry.type, "data": p, "valid": True} for p in entry.valid]
        items += [{"schema": relative, "type": entry.type, "data": p, "valid": False} for p in entry.reject]
    for language, generate, write, harness in (
        ("typescript", lambda r: generate_typescript(r, "corpus-contracts"), write_typescript, build_node_harness),
        ("go", lambda r: generate_go(r, HARNESS_GO_MODULE), write_go, build_go_harness),
    ):
        files, refused = _generate_without(root, generate)
        for refused_path in root.rglob("*.refused"):
            refused_path.rename(refused_path.with_suffix(""))
        write(files, build / language)
        command = harness(build / language, build / f"{language}-build")
        mine = [item for item in items if item["schema"] not in refused]
        (build / "items.json").write_text(json.dumps([{"type": i["type"], "data": i["data"]} for i in mine]))
        output = subprocess.run([*command, "roundtrip", str(build / "items.json")], capture_output=True, text=True,
                                timeout=600)
        if output.returncode != 0:
            raise RuntimeError(f"{language} harness failed: {output.stderr[-2000:]}")
        results = json.loads(output.stdout)
        for relative, entry in entries.items():
            outcome = outcomes[(relative, language)]
            if relative in refused:
                outcome.problems.append("generation refused the contract")
                continue
            outcome.generated = outcome.compiled = True
            mine_valid = [r for i, r in zip(mine, results, strict=True) if i["schema"] == relative and i["valid"]]
            mine_reject = [r for i, r in zip(mine, results, strict=True) if i["schema"] == relative and not i["valid"]]
            _score(outcome, entry.valid, mine_valid)
            outcome.rejected = sum(not r["ok"] for r in mine_reject)
            if outcome.rejected < len(mine_reject):
                outcome.problems.append("a must-reject payload was accepted")


def _python(root: Path, entries: dict[str, Entry], outcomes: dict[tuple[str, str], Outcome],
            use_cache: bool) -> tuple[float, float]:
    contracts = load_contracts(root)
    events = {doc.relative_path.as_posix(): doc for doc in contracts.events}
    started, cpu = time.monotonic(), _children_cpu()
    generated = python_side.generate_all(root, sorted(entries), "eventbus", use_cache)
    seconds, cpu = time.monotonic() - started, _children_cpu() - cpu
    baseline = python_side.generate_all(root, sorted(entries), "baseline", use_cache)
    for relative, entry in entries.items():
        outcome = outcomes[(relative, "python")]
        source, error = generated[relative]
        if source is None:
            outcome.problems.append(f"generation: {error}")
        else:
            outcome.generated = True
            results, rejected = python_side.round_trip(contracts, events[relative], source, entry.valid, entry.reject)
            outcome.compiled = rejected is not None
            _score(outcome, entry.valid, results)
            outcome.rejected = sum(rejected or [])
        base = outcomes[(relative, "datamodel-code-generator")]
        source, error = baseline[relative]
        if source is None:
            base.problems.append(f"generation: {error}")
            continue
        base.generated = True
        base_results = python_side.baseline_round_trip(events[relative], source, entry.valid)
        if base_results is not None:
            base.compiled = True
            _score(base, entry.valid, base_results)
    return seconds, cpu


def _children_cpu() -> float:
    """CPU seconds of the finished worker processes: generation time that other load on the machine cannot inflate."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _npm_baselines(build: Path, root: Path, entries: dict[str, Entry],
                   outcomes: dict[tuple[str, str], Outcome]) -> None:
    contracts = load_contracts(root)
    events = {doc.relative_path.as_posix(): doc for doc in contracts.events}
    bundles = {relative: bundle_contract(contracts, events[relative]) for relative in entries}
    for tool, results in run_baselines(build, bundles, entries).items():
        for relative, (generated, compiled, payload_results) in results.items():
            outcome = outcomes[(relative, tool)]
            outcome.generated, outcome.compiled = generated, compiled
            if payload_results is not None:
                _score(outcome, entries[relative].valid, payload_results)


def run(build: Path, *, sample: int | None = None, use_cache: bool = True) -> Report:
    root = build / "contracts"
    entries = build_corpus(root, sample=sample)
    outcomes = {(relative, name): Outcome() for relative in entries for name in (*LANGUAGES, *BASELINES)}
    _polyglot(build, root, entries, outcomes)
    seconds, cpu = _python(root, entries, outcomes, use_cache)
    _npm_baselines(build, root, entries, outcomes)
    return Report(entries, outcomes, seconds, cpu)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.corpus.run", description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--all", action="store_true", help="every schema of the corpus")
    group.add_argument("--sample", type=int, help="about this many schemas, spread over the corpus")
    parser.add_argument("--no-cache", action="store_true", help="generate the Python modules again")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="eventbus-corpus-") as tmp:
        report = run(Path(tmp), sample=None if args.all else args.sample, use_cache=not args.no_cache)
    print(report.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
