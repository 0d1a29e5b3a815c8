"""The Python side of the conformance suite, built on the SDK and the generated Python package.

    python harness.py publish PLAN   publish the plan's valid events with the typed API, then its
                                     invalid vectors raw with pika
    python harness.py consume PLAN   subscribe to every contract; print each event received,
                                     re-serialized from its typed model, as one JSON line
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import sys
from datetime import datetime
from typing import Any

import pika

from eventbus import BusSettings, EventBus, EventContext, SyncEventBus
from eventbus_contracts import REGISTRY


def _rfc3339(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def publish(plan: dict[str, Any]) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(plan["url"]))
    channel = connection.channel()
    channel.confirm_delivery()
    for item in plan["invalid"]:
        properties = pika.BasicProperties(
            headers=item["headers"], message_id=item["message_id"], delivery_mode=2, content_type=item["content_type"]
        )
        channel.basic_publish(item["exchange"], item["routing_key"], base64.b64decode(item["body_b64"]), properties)
    connection.close()
    settings = BusSettings(service=plan["service"], urls=(plan["url"],))
    with SyncEventBus(settings) as bus:
        for item in plan["valid"]:
            model = REGISTRY.get(item["type"]).model
            bus.publish(
                model.model_validate(item["data"]),
                event_id=item["id"],
                subject=item["subject"],
                time=datetime.fromisoformat(item["time"]),
            )
    emit({"published": len(plan["valid"]) + len(plan["invalid"])})


async def consume(plan: dict[str, Any]) -> None:
    waiting = set(plan["expect_ids"])
    done = asyncio.Event()
    bus = EventBus(BusSettings(service=plan["service"], urls=(plan["url"],)))

    async def handler(event: Any, context: EventContext) -> None:
        if context.id not in waiting:
            return  # someone else's event on the shared exchange
        emit({
            "id": context.id,
            "type": context.type,
            "source": context.source,
            # The attribute as written when it came in a cloudEvents_ header, else as parsed (ce-, structured).
            "time": context.headers.get("cloudEvents_time") or _rfc3339(context.time),
            "subject": context.subject,
            "dataschema": context.dataschema,
            "data": event.model_dump(mode="json", by_alias=True, exclude_unset=True),
        })
        waiting.discard(context.id)
        if not waiting:
            done.set()

    for contract in REGISTRY:
        bus.subscribe(contract.model)(handler)
    await bus.start()
    emit({"ready": True})
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, done.set)
    if waiting:
        await done.wait()
    await bus.close()


def main() -> None:
    command, plan_file = sys.argv[1], sys.argv[2]
    with open(plan_file, encoding="utf-8") as file:
        plan = json.load(file)
    if command == "publish":
        publish(plan)
    elif command == "consume":
        asyncio.run(consume(plan))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
