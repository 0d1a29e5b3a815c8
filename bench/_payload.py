"""The benchmark payload: the real ``conversation.ended`` contract on a private exchange, about 735 bytes.

Shared by ``run.py`` and ``soak.py``. Benchmark traffic goes to ``bench.chat``, never to the real exchange.
"""

from __future__ import annotations

import uuid

import orjson

from eventbus import EventContract
from eventbus_contracts import REGISTRY, ConversationEndedV1


class BenchConversationEnded(ConversationEndedV1):
    """The real model and schema on a private exchange: benchmark traffic must never reach real subscribers."""


_REAL = REGISTRY.get("chat.conversation.ended.v1")
CONTRACT: EventContract[BenchConversationEnded] = EventContract(
    type=_REAL.type, exchange="bench.chat", model=BenchConversationEnded, schema=_REAL.schema, resources=_REAL.resources
)
URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
PREFETCH = 200
WINDOW = 500


TARGET_BYTES = 735  # the event size the performance budget (DESIGN section 8) was measured with


def _event(n: int, participants: int) -> dict[str, object]:
    people = [f"user_{k:05d}" for k in range(participants)]
    return {
        **CONTRACT.schema["examples"][0],
        "conversation_id": f"conv_bench_{n:08d}_{uuid.uuid4().hex[:20]}",
        "participants": people,
        "messages_by_participant": {p: 10 + i for i, p in enumerate(people)},
        "message_count": sum(10 + i for i in range(participants)),
    }


def make_events(count: int) -> list[BenchConversationEnded]:
    """``count`` distinct events of about TARGET_BYTES bytes each on the wire."""
    participants = 2
    while len(orjson.dumps(_event(0, participants))) < TARGET_BYTES:
        participants += 1
    return [CONTRACT.validate_python(_event(n, participants)) for n in range(count)]
