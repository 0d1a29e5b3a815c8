"""The real-broker fixture of the pytest plugin: a bus in a vhost of its own, gone afterwards."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest

from eventbus import EventBus
from eventbus_contracts import REGISTRY, ConversationEndedV1

ENDED = REGISTRY.get("chat.conversation.ended.v1")


def _vhosts() -> set[str]:
    command = shutil.which("rabbitmqctl")
    assert command is not None
    out = subprocess.run([command, "list_vhosts", "-q"], capture_output=True, text=True, check=True, timeout=60)
    return set(out.stdout.split())


@pytest.mark.broker
async def test_rabbitmq_bus_runs_in_a_throwaway_vhost(rabbitmq_bus: EventBus) -> None:
    vhost = rabbitmq_bus.settings.url.rsplit("/", 1)[1]
    assert vhost.startswith("eventbus-test-") and vhost in _vhosts()
    seen: list[str] = []
    rabbitmq_bus.subscribe(ConversationEndedV1)(lambda event: seen.append(event.conversation_id))
    await rabbitmq_bus.start()
    await rabbitmq_bus.publish(ENDED.validate_python({**ENDED.schema["examples"][0], "conversation_id": "c-v"}))
    for _ in range(200):
        if seen:
            break
        await asyncio.sleep(0.05)
    assert seen == ["c-v"]
