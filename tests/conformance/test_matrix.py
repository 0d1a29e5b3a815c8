"""Cross-language conformance on the real broker: Python, Node and Go publish, all three consume.

One run: a consumer per language (its own service, so its own queues) subscribes to every
contract; then each language publishes every contract's examples through its typed API, plus
raw vectors: valid events in the other forms consumers must accept (``ce-`` and ``cloudEvents:``
headers, structured mode) and invalid ones each consumer must park. Every publish fans out to the
three consumers' queues, so one run fills the whole 3x3 matrix:

- every valid event arrives in every language, re-serialized from its typed value equal to the
  original field for field, with the same CloudEvents attributes everywhere;
- every invalid vector lands in every consumer's ``.dlq``, body byte for byte and headers kept,
  with the reason the wire format prescribes and the same ``eventbus-`` diagnosis headers.
"""

from __future__ import annotations

import base64
import json
import queue
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from eventbus_contracts import REGISTRY
from tests.conftest import BROKER_URL, RawBroker, wait_until

pytestmark = [pytest.mark.broker, pytest.mark.conformance]

LANGUAGES = ("python", "node", "go")
PUBLISHED_AT = "2026-11-25T17:45:00.123Z"
PARK_HEADERS = (
    "eventbus-park-reason", "eventbus-error", "eventbus-error-type", "eventbus-parked-at",
    "eventbus-original-exchange", "eventbus-original-routing-key", "eventbus-original-queue", "eventbus-attempt",
)


def _example(event_type: str, index: int = 0) -> dict[str, Any]:
    return dict(REGISTRY.get(event_type).schema["examples"][index])


@dataclass
class Vector:
    """One raw delivery: published with the plain AMQP client of the publishing language."""

    case: str
    event_type: str  # the queue it reaches (routing key)
    body: bytes
    headers: dict[str, str]
    content_type: str | None
    message_id: str
    parked_as: str | None  # None: a valid event in another accepted form
    data: Any = None  # the event data, for the valid ones

    def plan(self) -> dict[str, Any]:
        return {
            "exchange": REGISTRY.get(self.event_type).exchange, "routing_key": self.event_type,
            "content_type": self.content_type, "message_id": self.message_id, "headers": self.headers,
            "body_b64": base64.b64encode(self.body).decode(),
        }


def _vectors(run: str, language: str) -> list[Vector]:
    source = f"/services/conf-{run}-raw-{language}"

    def make(case: str, event_type: str, body: bytes | Any, *, parked_as: str | None, prefix: str = "cloudEvents_",
             content_type: str | None = "application/json", drop: str = "", **override: str) -> Vector:
        event_id = f"{run}-{language}-{case}"
        attributes = {"specversion": "1.0", "id": event_id, "source": source, "type": event_type,
                      "time": "2026-11-25T17:45:00Z", "subject": case, **override}
        headers = {f"{prefix}{name}": value for name, value in attributes.items() if name != drop}
        headers["conformance-case"] = event_id
        data = None if isinstance(body, bytes) else body
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return Vector(case, event_type, raw, headers, content_type, event_id, parked_as, data)

    ended, candidates, status = (
        "chat.conversation.ended.v1", "context.candidates.updated.v1", "context.friendship.status_changed.v1",
    )
    structured_data = _example(status, 1)
    structured_id = f"{run}-{language}-structured"
    structured = Vector(
        "structured", status,
        json.dumps({"specversion": "1.0", "id": structured_id, "source": source, "type": status,
                    "time": "2026-11-25T17:45:00Z", "subject": "structured", "datacontenttype": "application/json",
                    "data": structured_data}).encode(),
        {"conformance-case": structured_id}, "application/cloudevents+json", structured_id, None, structured_data,
    )
    return [
        make("ce-dash", ended, _example(ended, 1), parked_as=None, prefix="ce-"),
        make("ce-colon", candidates, _example(candidates, 0), parked_as=None, prefix="cloudEvents:"),
        structured,
        make("invalid-json", ended, b'{"conversation_id": ', parked_as="invalid_json"),
        make("invalid-utf8", status, b'{"user_a": "\xff\xfe"}', parked_as="invalid_json"),
        make("too-few-participants", ended, {**_example(ended), "participants": ["u_1"]}, parked_as="schema_invalid"),
        make("no-computed-at", candidates, {k: v for k, v in _example(candidates).items() if k != "computed_at"},
             parked_as="schema_invalid"),
        make("unknown-status", status, {**_example(status), "status": "best_friend"}, parked_as="schema_invalid"),
        make("no-source", status, _example(status), parked_as="missing_attribute", drop="source"),
        make("old-specversion", candidates, _example(candidates), parked_as="bad_specversion", specversion="0.3"),
        make("text-plain", ended, _example(ended), parked_as="unsupported_content_type", content_type="text/plain"),
        make("other-type", ended, _example(ended), parked_as="unsupported_event_type",
             type="chat.conversation.ended.v2"),
    ]


@dataclass
class Published:
    """What one language publishes: typed events from the contracts' examples, and raw vectors."""

    language: str
    run: str
    service: str
    valid: list[dict[str, Any]]
    vectors: list[Vector]

    def plan(self) -> dict[str, Any]:
        return {"url": BROKER_URL, "service": self.service, "valid": self.valid,
                "invalid": [vector.plan() for vector in self.vectors], "expect_ids": []}

    def expected(self) -> dict[str, dict[str, Any]]:
        """Event id → the data and attributes every consumer must report."""
        found = {}
        for item in self.valid:
            found[item["id"]] = {"data": item["data"], "type": item["type"], "source": f"/services/{self.service}",
                                 "subject": item["subject"], "dataschema": REGISTRY.get(item["type"]).schema_id}
        for vector in self.vectors:
            if vector.parked_as is None:
                found[vector.message_id] = {"data": vector.data, "type": vector.event_type,
                                            "source": f"/services/conf-{self.run}-raw-{self.language}",
                                            "subject": vector.case, "dataschema": None}
        return found


def _published(run: str, language: str) -> Published:
    valid = [
        {"type": contract.type, "data": example, "id": f"{run}-{language}-{contract.type}-{index}",
         "subject": f"subject-{index}", "time": PUBLISHED_AT}
        for contract in REGISTRY
        for index, example in enumerate(contract.schema["examples"])
    ]
    return Published(language, run, f"conf-{run}-pub{language}", valid, _vectors(run, language))


@dataclass
class Consumer:
    language: str
    service: str
    process: subprocess.Popen[str]
    lines: queue.Queue[str] = field(default_factory=queue.Queue)
    records: list[dict[str, Any]] = field(default_factory=list)

    def start_reader(self) -> None:
        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.lines.put(line)

        threading.Thread(target=read, daemon=True).start()

    def wait_ready(self, timeout: float = 60) -> None:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"{self.language} consumer never became ready: {self.stderr()}") from None
            if json.loads(line).get("ready"):
                return

    def finish(self, timeout: float = 90) -> list[dict[str, Any]]:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait(timeout=20)
        while not self.lines.empty():
            self.records.append(json.loads(self.lines.get()))
        return self.records

    def stderr(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return "(still running)"
        return self.process.stderr.read()


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def broker(run_id: str) -> Iterator[RawBroker]:
    raw = RawBroker(BROKER_URL)
    for language in LANGUAGES:
        for contract in REGISTRY:
            queue_name = f"conf-{run_id}-{language}.{contract.type}"
            raw.track(queue_name, f"{queue_name}.dlq")
    yield raw
    raw.close()


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_every_language_reads_what_every_language_writes(
    run_id: str, broker: RawBroker, python_harness: list[str], node_harness: list[str], go_harness: list[str],
    tmp_path: Path,
) -> None:
    harnesses = {"python": python_harness, "node": node_harness, "go": go_harness}
    publishers = [_published(run_id, language) for language in LANGUAGES]
    expected: dict[str, dict[str, Any]] = {}
    for publisher in publishers:
        expected.update(publisher.expected())

    consumers = []
    for language in LANGUAGES:
        plan_file = tmp_path / f"consume-{language}.json"
        plan_file.write_text(json.dumps({"url": BROKER_URL, "service": f"conf-{run_id}-{language}", "valid": [],
                                         "invalid": [], "expect_ids": sorted(expected)}))
        process = subprocess.Popen([*harnesses[language], "consume", str(plan_file)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        consumer = Consumer(language, f"conf-{run_id}-{language}", process)
        consumer.start_reader()
        consumers.append(consumer)
    try:
        for consumer in consumers:
            consumer.wait_ready()
        for publisher in publishers:
            plan_file = tmp_path / f"publish-{publisher.language}.json"
            plan_file.write_text(json.dumps(publisher.plan()))
            result = subprocess.run([*harnesses[publisher.language], "publish", str(plan_file)], capture_output=True,
                                    text=True, timeout=120)
            assert result.returncode == 0, f"{publisher.language} publisher failed:\n{result.stdout}\n{result.stderr}"
            assert json.loads(result.stdout.splitlines()[-1]) == {"published": len(publisher.plan()["valid"]) + len(
                publisher.vectors)}
        received = {consumer.language: consumer.finish() for consumer in consumers}
    finally:
        for consumer in consumers:
            if consumer.process.poll() is None:
                consumer.process.kill()

    matrix: dict[tuple[str, str], list[str]] = {(p, c): [] for p in LANGUAGES for c in LANGUAGES}
    by_consumer = {language: {r["id"]: r for r in records if "id" in r} for language, records in received.items()}
    assert len(expected) == 3 * (6 + 3)  # every contract's examples plus three raw forms, from each language
    for publisher in publishers:
        for event_id, want in publisher.expected().items():
            for consumer in LANGUAGES:
                problems = matrix[(publisher.language, consumer)]
                got = by_consumer[consumer].get(event_id)
                if got is None:
                    problems.append(f"{event_id}: never received")
                    continue
                if got["data"] != want["data"]:
                    problems.append(f"{event_id}: data {got['data']} != {want['data']}")
                for attribute in ("type", "source", "subject", "dataschema"):
                    if got[attribute] != want[attribute]:
                        problems.append(f"{event_id}: {attribute} {got[attribute]!r} != {want[attribute]!r}")
            times = {by_consumer[c][event_id]["time"] for c in LANGUAGES if event_id in by_consumer[c]}
            if len(times) != 1:
                matrix[(publisher.language, "*")] = [f"{event_id}: consumers saw different times {times}"]
        for item in publisher.valid:
            for consumer in LANGUAGES:
                got = by_consumer[consumer].get(item["id"])
                if got and _instant(got["time"]) != _instant(PUBLISHED_AT):
                    matrix[(publisher.language, consumer)].append(f"{item['id']}: time {got['time']}")

    _check_parked(broker, run_id, publishers, matrix)
    table = "\n".join(
        f"{publisher:>7} → {consumer:<7} {'ok' if not problems else '; '.join(problems[:4])}"
        for (publisher, consumer), problems in sorted(matrix.items())
    )
    assert all(not problems for problems in matrix.values()), f"conformance matrix:\n{table}"


def _check_parked(broker: RawBroker, run_id: str, publishers: list[Published],
                  matrix: dict[tuple[str, str], list[str]]) -> None:
    assert sum(1 for p in publishers for v in p.vectors if v.parked_as) == 3 * 9  # nine invalid vectors per language
    for consumer in LANGUAGES:
        for contract in REGISTRY:
            queue_name = f"conf-{run_id}-{consumer}.{contract.type}"
            wanted = [v for p in publishers for v in p.vectors if v.parked_as and v.event_type == contract.type]
            parked = _take_parked(broker, f"{queue_name}.dlq", {v.message_id for v in wanted})
            for publisher in publishers:
                for vector in (v for v in publisher.vectors if v.parked_as and v.event_type == contract.type):
                    problems = matrix[(publisher.language, consumer)]
                    message = parked.get(vector.message_id)
                    if message is None:
                        problems.append(f"{vector.case}: not parked")
                        continue
                    problems.extend(f"{vector.case}: {p}" for p in _park_problems(message, vector, queue_name))


def _take_parked(broker: RawBroker, dead_letters: str, ids: set[str]) -> dict[str, Any]:
    """Our parked messages by id; other runs' bad input on the shared exchanges may be parked there too."""
    parked: dict[str, Any] = {}

    def all_found() -> bool:
        for message in broker.get(dead_letters, 50, timeout=0.2):
            if message.properties.message_id in ids:
                parked[message.properties.message_id] = message
        return ids <= parked.keys()

    wait_until(all_found, timeout=30)
    return parked


def _park_problems(message: Any, vector: Vector, queue_name: str) -> list[str]:
    headers = message.headers
    problems = []
    if message.body != vector.body:
        problems.append("body changed")
    if headers.get("eventbus-park-reason") != vector.parked_as:
        problems.append(f"reason {headers.get('eventbus-park-reason')!r} != {vector.parked_as!r}")
    missing = [name for name in PARK_HEADERS if name not in headers]
    if missing:
        problems.append(f"missing {missing}")
    if not headers.get("eventbus-error") or not headers.get("eventbus-error-type"):
        problems.append("no error text or type")
    expected_origin = {
        "eventbus-original-exchange": REGISTRY.get(vector.event_type).exchange,
        "eventbus-original-routing-key": vector.event_type,
        "eventbus-original-queue": queue_name,
    }
    for name, value in expected_origin.items():
        if _text(headers.get(name)) != value:
            problems.append(f"{name} {headers.get(name)!r} != {value!r}")
    if headers.get("eventbus-attempt") != 1:
        problems.append(f"attempt {headers.get('eventbus-attempt')!r}")
    for name, value in vector.headers.items():
        if _text(headers.get(name)) != value:
            problems.append(f"header {name} lost")
    if (message.properties.content_type or None) != vector.content_type:
        problems.append(f"content type {message.properties.content_type!r}")
    try:
        _instant(_text(headers.get("eventbus-parked-at")))
    except ValueError:
        problems.append(f"parked-at {headers.get('eventbus-parked-at')!r}")
    return problems


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def test_a_publish_no_queue_can_take_is_an_error_in_every_language(
    run_id: str, node_harness: list[str], go_harness: list[str], tmp_path: Path
) -> None:
    """mandatory + confirms: the broker returns the message, and the typed publish fails with it."""
    exchange = f"conf-{run_id}-nobody"
    item = {"type": "chat.conversation.ended.v1", "data": _example("chat.conversation.ended.v1"),
            "id": f"{run_id}-unroutable", "subject": "s", "time": PUBLISHED_AT}
    plan_file = tmp_path / "unroutable.json"
    plan_file.write_text(json.dumps({"url": BROKER_URL, "service": f"conf-{run_id}-u", "exchange": exchange,
                                     "valid": [item], "invalid": [], "expect_ids": []}))
    try:
        for harness in (node_harness, go_harness):
            result = subprocess.run([*harness, "unroutable", str(plan_file)], capture_output=True, text=True,
                                    timeout=60)
            assert result.returncode == 0, result.stderr
            assert json.loads(result.stdout.splitlines()[-1]) == {"error": "unroutable"}
    finally:
        raw = RawBroker(BROKER_URL)
        raw.channel.exchange_delete(exchange)
        raw.close()
