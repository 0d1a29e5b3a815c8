"""The type mapping on a sample of the public corpus, in all three languages, beside datamodel-code-generator.

The whole corpus (several hundred schemas) runs with ``python -m tests.corpus.run --all`` and prints
the table of docs/codegen.md; this test runs an evenly spread sample of it, fast enough for every CI
run, and checks what the whole run promises: each language generates and compiles every schema,
round-trips every valid payload (the same JSON value; a date-time re-spelt as the same instant
counts as unchanged), rejects every must-reject payload, and Python is never behind
datamodel-code-generator alone. ``KNOWN_GAPS`` names exactly the schemas of the whole corpus that
do not round-trip yet, so an improvement or a regression both show up here.
"""

from __future__ import annotations

import pytest

from tests.corpus.run import LANGUAGES, Report, compare, run

pytestmark = pytest.mark.polyglot

SAMPLE = 16
# Schemas (of the whole corpus) whose payloads do not yet round-trip in a language, and why.
KNOWN_GAPS: dict[str, dict[str, str]] = {
    "python": {},
    "typescript": {},
    "go": {},
}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    return run(tmp_path_factory.mktemp("corpus"), sample=SAMPLE)


def test_the_sample_is_mostly_public_schemas_from_each_source(report: Report) -> None:
    domains = {relative.split("/")[0] for relative in report.entries}
    assert {"github", "shopify", "asyncapi"} <= domains
    assert len(report.entries) >= SAMPLE


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_schema_compiles_and_its_payloads_round_trip(report: Report, language: str) -> None:
    print(f"\n{report.table()}")
    expected = {schema for schema in KNOWN_GAPS[language] if schema in report.entries}
    assert report.gaps(language).keys() == expected, report.table()
    outcomes = [outcome for (_, name), outcome in report.outcomes.items() if name == language]
    assert all(outcome.compiled for outcome in outcomes)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_must_reject_payload_is_rejected(report: Report, language: str) -> None:
    for relative, entry in report.entries.items():
        assert report.outcomes[(relative, language)].rejected == len(entry.reject), relative


def test_python_is_not_behind_datamodel_code_generator_alone(report: Report) -> None:
    def total(name: str) -> tuple[int, int]:
        mine = [o for (_, n), o in report.outcomes.items() if n == name]
        return sum(o.compiled for o in mine), sum(o.round_tripped for o in mine)

    ours, baseline = total("python"), total("datamodel-code-generator")
    assert ours[0] >= baseline[0] and ours[1] >= baseline[1], report.table()


def test_date_times_compare_as_instants_and_everything_else_exactly() -> None:
    assert compare({"at": "2024-01-01T10:00:00.000Z"}, {"at": "2024-01-01T10:00:00Z"}) == (True, [])
    assert compare({"at": "2024-01-01T10:00:00+02:00"}, {"at": "2024-01-01T08:00:00Z"})[1]  # offset lost
    assert compare({"n": 1}, {"n": 1.0}) == (False, [])
    assert compare({"a": 1}, {}) == (False, ["/a dropped"])
    assert compare(["x"], ["y"])[1] == ['/0: "x" became "y"']
