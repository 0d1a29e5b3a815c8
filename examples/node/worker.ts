/**
 * A consumer of `chat.conversation.ended.v1` with a handler that fails now and then, the way a
 * call to a flaky downstream service does: the runtime retries it with exponential backoff through
 * the broker's delay queues (attempt 2 after ~1 s, attempt 3 after ~3 s, ...) and parks it in
 * `<queue>.dlq` after the last attempt, where `eventbus dlq show` finds it.
 *
 *   npm run build && npm run worker -- --service conversation-archive
 *
 * Options: --service NAME (default conversation-archive), --max N (stop after N events handled;
 * default: run until SIGTERM or Ctrl-C, then finish what is in flight and close).
 */
import { EventBus, RetryLater, subscribeConversationEndedV1 } from "../../generated/typescript/src/index.js";

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 && index + 1 < process.argv.length ? process.argv[index + 1] : fallback;
}

async function main(): Promise<void> {
  const max = Number.parseInt(option("max", "0"), 10);
  const bus = await EventBus.connect({ service: option("service", "conversation-archive"), url: process.env.EVENTBUS_URL, logger: console });
  let handled = 0;
  bus.use(async (context, next) => {
    const started = Date.now();
    await next();
    console.log(`handled ${context.type} ${context.id} (attempt ${context.attempt}) in ${Date.now() - started} ms`);
  });
  await subscribeConversationEndedV1(
    bus,
    async (event, context) => {
      if (context.attempt === 1 && event.message_count % 2 === 1) {
        throw new Error("archive service unavailable"); // retried by the policy below
      }
      if (event.participants.length > 50) throw new RetryLater(60_000); // "come back in a minute"
      handled += 1;
      if (max > 0 && handled >= max) void bus.close();
    },
    { retry: { maxAttempts: 4, firstDelay: 1_000, factor: 3 }, timeoutMs: 10_000 },
  );
  console.log("waiting for conversations (Ctrl-C to stop)");
  await bus.closeOnSignals();
}

main().catch((error: unknown) => {
  console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
