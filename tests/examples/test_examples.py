"""The runnable examples run: a short bounded run of each on the real broker, its output checked."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventbus import BusSettings, SyncEventBus
from eventbus_contracts import REGISTRY
from tests.conftest import BROKER_URL, RawBroker, RawMessage, wait_until
from tests.toolchain.builds import go_env, go_workspace, have_go, link_node_modules, run

pytestmark = [pytest.mark.broker, pytest.mark.polyglot]

ROOT = Path(__file__).resolve().parents[2]
STATUS = "context.friendship.status_changed.v1"


@pytest.fixture
def service() -> str:
    return f"example-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def broker() -> Iterator[RawBroker]:
    raw = RawBroker(BROKER_URL)
    yield raw
    raw.close()


def test_node_simulator_publishes_confirmed_conversations(tmp_path: Path, service: str, broker: RawBroker) -> None:
    # The example compiles against the generated package by relative path, as in the repository.
    shutil.copytree(ROOT / "generated" / "typescript", tmp_path / "generated" / "typescript")
    example = tmp_path / "examples" / "node"
    shutil.copytree(ROOT / "examples" / "node", example, ignore=shutil.ignore_patterns("node_modules", "dist"))
    link_node_modules(example)  # what `npm install` would put there, from the test toolchain's lockfile
    run(["npm", "run", "--silent", "build"], example)
    tap = broker.declare_tap("chat", "chat.conversation.ended.v1")

    output = run(["npm", "start", "--silent", "--", "--count", "3", "--service", service], example,
                 env={"EVENTBUS_URL": BROKER_URL}, timeout=60)

    lines = output.splitlines()
    assert len(lines) == 4 and lines[-1] == "published 3 conversations, all confirmed by the broker"
    ids = [line.rsplit(" as ", 1)[1] for line in lines[:3]]
    received: list[RawMessage] = []

    def three_of_ours() -> bool:  # other tests may publish conversations on the shared exchange too
        taken = broker.get(tap, 10, timeout=0.2)
        received.extend(m for m in taken if m.headers.get("cloudEvents_source") == f"/services/{service}")
        return len(received) >= 3

    assert wait_until(three_of_ours, timeout=15)
    assert [m.headers["cloudEvents_id"] for m in received] == ids
    contract = REGISTRY.get("chat.conversation.ended.v1")
    for message in received:
        assert message.properties.content_type == "application/json" and message.properties.delivery_mode == 2
        contract.decode(message.body)  # valid against the contract, read back in Python
        assert message.headers["cloudEvents_subject"] == json.loads(message.body)["conversation_id"]


def test_go_consumer_prints_friendship_status_changes(tmp_path: Path, service: str, broker: RawBroker) -> None:
    if not have_go():
        pytest.fail("Go and the Debian Go libraries are missing: .ci/run installs them")
    queue = f"{service}.{STATUS}"
    broker.track(queue, f"{queue}.dlq")
    work = go_workspace(tmp_path, [ROOT / "examples" / "go"])
    binary = tmp_path / "friendship"
    run(["go", "build", "-o", str(binary), "."], ROOT / "examples" / "go", env=go_env(work))
    process = subprocess.Popen([str(binary), "-service", service, "-max", "100"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "EVENTBUS_URL": BROKER_URL})
    expected = [
        "2026-11-25T17:42:30Z u_1842 <-> u_2071: acquaintance -> friend (score 41.7, conversation)",
        "2026-11-26T00:00:00Z u_1842 <-> u_3300: friend -> acquaintance (score 38.2, decay)",
    ]
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == f"waiting for friendship status changes on {queue}"
        model = REGISTRY.get(STATUS).model
        with SyncEventBus(BusSettings(service=f"{service}-publisher", urls=(BROKER_URL,))) as bus:
            for example in REGISTRY.get(STATUS).schema["examples"]:
                bus.publish(model.model_validate(example))
        # Other test runs may publish status changes on the shared exchange too: wait for ours.
        printed = [process.stdout.readline().rstrip("\n") for _ in range(2)]
        while not set(expected) <= set(printed) and len(printed) < 50:
            printed.append(process.stdout.readline().rstrip("\n"))
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    ours = [line for line in printed if line in expected]
    assert ours == expected
    last = out.splitlines()[-1].split()
    assert last[0] == "printed" and int(last[1]) >= len(printed) and last[2:] == ["status", "changes"]
