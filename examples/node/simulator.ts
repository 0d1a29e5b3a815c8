/**
 * A chat back end in miniature: it publishes `chat.conversation.ended.v1` events with the generated
 * TypeScript package, each validated against the contract and confirmed by the broker.
 *
 *   npm install && npm run build && npm start -- --count 3
 *
 * Options: --count N (default 5), --service NAME (default chat-backend-simulator), --delay-ms MS
 * (hold the events back that long, through the broker's delay queues; default: deliver now);
 * EVENTBUS_URL points at the broker (default: local RabbitMQ). A publish nobody is subscribed to
 * fails with an UnroutableError: start a consumer of conversations first (`npm run worker`, or
 * `eventbus tail chat.#`).
 */
import { EventBus, publishConversationEndedV1, type ConversationEndedV1 } from "../../generated/typescript/src/index.js";

const USERS = ["u_1842", "u_2071", "u_3300", "u_5120", "u_0007"];

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 && index + 1 < process.argv.length ? process.argv[index + 1] : fallback;
}

/** A plausible conversation: two or three participants, a few minutes long, messages split unevenly. */
function conversation(index: number, now: Date): ConversationEndedV1 {
  const participants = [USERS[index % USERS.length], USERS[(index + 1) % USERS.length]];
  if (index % 3 === 2) participants.push(USERS[(index + 3) % USERS.length]);
  const perParticipant: Record<string, number> = {};
  participants.forEach((user, position) => (perParticipant[user] = 3 + ((index + position * 7) % 11)));
  const messageCount = Object.values(perParticipant).reduce((sum, count) => sum + count, 0);
  const started = new Date(now.getTime() - (10 + index) * 60_000);
  return {
    conversation_id: `conv_sim_${now.getTime().toString(36)}_${index}`,
    participants,
    started_at: started.toISOString(),
    ended_at: now.toISOString(),
    message_count: messageCount,
    messages_by_participant: perParticipant,
    ended_reason: "completed",
  };
}

async function main(): Promise<void> {
  const count = Number.parseInt(option("count", "5"), 10);
  const delay = option("delay-ms", "");
  const delayMs = delay === "" ? undefined : Number.parseInt(delay, 10);
  const bus = await EventBus.connect({ service: option("service", "chat-backend-simulator"), url: process.env.EVENTBUS_URL });
  try {
    const now = new Date();
    for (let index = 0; index < count; index += 1) {
      const event = conversation(index, now);
      const id = await publishConversationEndedV1(bus, event, { subject: event.conversation_id, delayMs });
      console.log(`published ${event.conversation_id} (${event.participants.join(", ")}; ${event.message_count} messages) as ${id}`);
    }
    const when = delayMs === undefined ? "" : `, due in ${delayMs / 1000}s`;
    console.log(`published ${count} conversations, all confirmed by the broker${when}`);
  } finally {
    await bus.close();
  }
}

main().catch((error: unknown) => {
  console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
