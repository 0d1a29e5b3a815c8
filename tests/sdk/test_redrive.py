"""Re-driving parked messages: the chosen ones go back to their queue unchanged but for the park
headers; the others stay in the dead-letter queue."""

from __future__ import annotations

import pika
import pytest

from eventbus import BusSettings, redrive_parked

from ..conftest import RawBroker

pytestmark = pytest.mark.broker


def parked(n: int, error_type: str, reason: str, queue: str) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type="application/json",
        message_id=f"evt-{n}",
        delivery_mode=2,
        headers={
            "cloudEvents_id": f"evt-{n}",
            "cloudEvents_type": "chat.conversation.ended.v1",
            "eventbus-park-reason": reason,
            "eventbus-error": "it broke",
            "eventbus-error-type": error_type,
            "eventbus-original-queue": queue,
            "eventbus-attempt": 1,
        },
    )


async def test_transient_failures_go_back_and_bad_data_stays_parked(
    settings: BusSettings, raw: RawBroker, service: str
) -> None:
    queue = f"{service}.chat.conversation.ended.v1"
    for name in (queue, f"{queue}.dlq"):
        raw.channel.queue_declare(name, durable=True, arguments={"x-queue-type": "quorum"})
    raw.publish("", f"{queue}.dlq", b'{"n": 1}', parked(1, "sqlalchemy.exc.OperationalError", "handler_error", queue))
    raw.publish("", f"{queue}.dlq", b'{"n": 2}', parked(2, "eventbus.EventValidationError", "schema_invalid", queue))
    raw.publish("", f"{queue}.dlq", b'{"n": 3}', parked(3, "builtins.TimeoutError", "handler_error", queue))

    report = await redrive_parked(settings, queue, select=lambda p: p.error_type != "eventbus.EventValidationError")

    assert (report.examined, report.redriven, report.kept) == (3, 2, 1)
    back = raw.get(queue, 2)
    assert sorted(m.body for m in back) == [b'{"n": 1}', b'{"n": 3}']
    for message in back:
        assert message.headers["cloudEvents_id"] == message.properties.message_id
        assert not any(k.startswith("eventbus-park") or k == "eventbus-error" for k in message.headers)
        assert "eventbus-redriven-at" in message.headers
    still = raw.get(f"{queue}.dlq", 1)
    assert [m.body for m in still] == [b'{"n": 2}']
    assert still[0].headers["eventbus-park-reason"] == "schema_invalid"


async def test_a_queue_without_a_dead_letter_queue_has_nothing_to_redrive(settings: BusSettings, service: str) -> None:
    report = await redrive_parked(settings, f"{service}.nothing", select=lambda p: True)
    assert (report.examined, report.redriven, report.kept) == (0, 0, 0)
