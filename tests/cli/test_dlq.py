"""``eventbus dlq``: list, show (non-destructive, order kept), replay (confirmed), purge (asks first).

The broker is shared: other publishers' broken events may be parked in the same DLQ while the
fixture runs, so assertions look at the fixture's own event ids.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from eventbus import BusSettings, ParkMessage, RetryPolicy, SyncEventBus
from eventbus_contracts import REGISTRY, ConversationEndedV1

from .._processes import ROOT
from ..conftest import BROKER_URL, RawBroker

pytestmark = pytest.mark.broker

CONTRACT = REGISTRY.get("chat.conversation.ended.v1")
EXAMPLE = CONTRACT.schema["examples"][0]
REASONS = ["handler_error", "not_for_us", "handler_error", "not_for_us", "handler_error"]


def dlq(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "eventbus_cli", "dlq", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, input=stdin, env={**os.environ, "EVENTBUS_URL": BROKER_URL})


@pytest.fixture
def parked(raw: RawBroker) -> Iterator[tuple[str, list[str]]]:
    """A service whose DLQ holds five parked events, in order; yields (consumer queue, their ids)."""
    service = f"test-dlq-{uuid.uuid4().hex[:10]}"
    queue = f"{service}.{CONTRACT.type}"
    raw.track(queue, queue + ".dlq")

    refused: list[str] = []

    def refuse(event: ConversationEndedV1) -> None:
        if not event.conversation_id.startswith(f"conv_{service}_"):
            return  # someone else's
        refused.append(event.conversation_id)
        if REASONS[int(event.conversation_id.rsplit("_", 1)[1])] == "not_for_us":
            raise ParkMessage("not_for_us")
        raise RuntimeError(f"cannot handle {event.conversation_id}")

    with SyncEventBus(BusSettings(service=service, urls=(BROKER_URL,))) as bus:
        bus.subscribe(ConversationEndedV1, retry=RetryPolicy.never())(refuse)
        bus.start()
        ids = []
        for n in range(len(REASONS)):  # one by one, so they are parked in this order
            ids.append(bus.publish(CONTRACT.validate_python({**EXAMPLE, "conversation_id": f"conv_{service}_{n}"})))
            bus.run(until=lambda: len(refused) > n and raw.depth(queue + ".dlq") > 0, timeout=20)  # noqa: B023
    yield queue, ids


def _shown(queue: str, *args: str) -> list[dict[str, object]]:
    result = dlq("show", queue, "--json", *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def _ours(shown: list[dict[str, object]], ids: list[str]) -> list[dict[str, object]]:
    return [m for m in shown if m["id"] in ids]


def test_list_finds_the_services_dead_letter_queue(parked: tuple[str, list[str]]) -> None:
    queue, ids = parked
    service = queue.split(".", 1)[0]
    result = dlq("list", "--service", service, "--json")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    [row] = [r for r in rows if r["queue"] == queue + ".dlq"]
    assert row["messages"] >= len(ids)
    assert any(row["queue"] == "eventbus.delay.v2.unroutable" for row in rows)


def test_show_reads_without_removing_and_keeps_the_order(parked: tuple[str, list[str]], raw: RawBroker) -> None:
    queue, ids = parked
    everything = _shown(queue)
    first = _ours(everything, ids)
    assert [m["id"] for m in first] == ids
    assert [m["reason"] for m in first] == REASONS
    service = queue.split(".", 1)[0]
    assert first[0]["error"] == f"RuntimeError: cannot handle conv_{service}_0"
    assert first[0]["attempts"] == 1 and first[0]["original_queue"] == queue
    assert json.loads(first[0]["body"])["conversation_id"] == f"conv_{service}_0"
    order = [m["id"] for m in everything]
    assert [m["id"] for m in _shown(queue + ".dlq")] == order  # nothing removed, the quorum DLQ did not rotate
    assert [m["id"] for m in _shown(queue, "--skip", "2", "--limit", "2")] == order[2:4]
    assert raw.depth(queue + ".dlq") == len(everything)
    table = dlq("show", queue)
    assert table.returncode == 0 and "not_for_us" in table.stdout and f"{len(everything)} message(s)" in table.stdout


def test_replay_sends_back_only_what_was_asked_and_removes_it_after_the_confirm(
    parked: tuple[str, list[str]], raw: RawBroker
) -> None:
    queue, ids = parked
    result = dlq("replay", queue, "--id", ids[1])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("replayed 1 of ")
    result = dlq("replay", queue, "--reason", "handler_error", "--limit", "2")
    assert result.returncode == 0 and result.stdout.startswith("replayed 2 of "), result.stderr
    assert [m["id"] for m in _ours(_shown(queue), ids)] == [ids[3], ids[4]]
    # (other tests on this broker may publish the same event type into the queue meanwhile)
    back = {m.properties.message_id: m for m in raw.get(queue, raw.depth(queue), timeout=10)}
    assert set(ids) & set(back) == {ids[0], ids[1], ids[2]}
    headers = back[ids[1]].headers
    assert headers["eventbus-replays"] == 1 and "eventbus-replayed-at" in headers
    assert "eventbus-attempt" not in headers and "eventbus-park-reason" not in headers  # starts over at attempt 1
    assert headers["eventbus-original-exchange"] == "chat" and headers["cloudEvents_id"] == ids[1]
    service = queue.split(".", 1)[0]
    original = CONTRACT.validate_python({**EXAMPLE, "conversation_id": f"conv_{service}_1"})
    assert back[ids[1]].body == CONTRACT.encode(original)


def test_replay_of_an_unknown_id_or_to_a_missing_queue_leaves_everything_parked(
    parked: tuple[str, list[str]], raw: RawBroker
) -> None:
    queue, ids = parked
    result = dlq("replay", queue, "--id", "no-such-id")
    assert result.returncode == 1 and "error: no message with id no-such-id" in result.stderr
    raw.channel.queue_unbind(queue, CONTRACT.exchange, routing_key=CONTRACT.routing_key)  # see RawBroker.close
    raw.channel.queue_delete(queue)
    result = dlq("replay", queue, "--all")
    assert result.returncode == 1
    assert f"stays parked: queue '{queue}' does not exist" in result.stderr
    assert [m["id"] for m in _ours(_shown(queue), ids)] == ids


def test_purge_asks_first_then_deletes(parked: tuple[str, list[str]], raw: RawBroker) -> None:
    queue, ids = parked
    before = raw.depth(queue + ".dlq")
    declined = dlq("purge", queue, stdin="n\n")
    assert declined.returncode == 1 and "nothing was deleted" in declined.stderr
    assert raw.depth(queue + ".dlq") == before >= len(ids)
    accepted = dlq("purge", queue, stdin="y\n")
    assert accepted.returncode == 0 and f"purged {before} message(s)" in accepted.stdout
    assert raw.depth(queue + ".dlq") == 0


def test_mistakes_are_one_line_errors(parked: tuple[str, list[str]]) -> None:
    queue, _ = parked
    missing = dlq("show", "no-such-service.x.v1")
    assert missing.returncode == 1 and missing.stderr == "error: queue 'no-such-service.x.v1.dlq' does not exist\n"
    nothing = dlq("replay", queue)
    assert nothing.returncode == 2 and "--id ID, --reason TEXT or --all" in nothing.stderr
