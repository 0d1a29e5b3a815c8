"""Publish one conversation.ended event and handle it with a typed subscriber.

    python examples/python/quickstart.py

Needs RabbitMQ on 127.0.0.1:5672 (or EVENTBUS_URL). Prints the event as the handler got it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from eventbus import EventBus, EventContext
from eventbus_contracts import ConversationEndedV1


async def main() -> None:
    bus = EventBus.from_env(service="quickstart")
    received = asyncio.Event()

    @bus.subscribe(ConversationEndedV1)
    async def on_conversation_ended(event: ConversationEndedV1, ctx: EventContext) -> None:
        if ctx.subject != "conv_quickstart":
            return  # the queue gets every conversation.ended on the bus; this example waits for its own
        print(f"{ctx.type} {ctx.id} from {ctx.source}: {event.participants} sent {event.message_count} messages")
        received.set()

    await bus.start()  # declares quickstart.chat.conversation.ended.v1 (+ .dlq) and binds it
    ended = datetime.now(UTC)
    event_id = await bus.publish(
        ConversationEndedV1(
            conversation_id="conv_quickstart",
            participants=["u_ada", "u_grace"],
            started_at=ended - timedelta(minutes=25),
            ended_at=ended,
            message_count=42,
            messages_by_participant={"u_ada": 20, "u_grace": 22},
        ),
        subject="conv_quickstart",
    )
    print(f"published {event_id} (confirmed by the broker)")
    await asyncio.wait_for(received.wait(), timeout=10)
    await bus.close()


if __name__ == "__main__":
    asyncio.run(main())
