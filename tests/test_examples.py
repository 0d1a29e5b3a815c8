"""Everything shown runs: the Python examples, checked against their expected output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import RawBroker

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.broker
def test_quickstart_publishes_and_handles_one_event(raw: RawBroker) -> None:
    # The example's queue is durable and bound to the shared exchange: remove it afterwards, or it
    # would collect every conversation.ended the rest of the suite publishes, run after run.
    raw.track("quickstart.chat.conversation.ended.v1", "quickstart.chat.conversation.ended.v1.dlq")
    result = subprocess.run(
        [sys.executable, "examples/python/quickstart.py"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    published = [line for line in lines if line.startswith("published ")]
    assert len(published) == 1 and published[0].endswith("(confirmed by the broker)"), result.stdout
    event_id = published[0].split()[1]
    # the handler may run before the confirm reaches the publisher, so the order of the two lines is free
    assert (
        f"chat.conversation.ended.v1 {event_id} from /services/quickstart: ['u_ada', 'u_grace'] sent 42 messages"
        in lines
    ), result.stdout
