/**
 * The Node side of the conformance suite, built on the generated TypeScript package.
 *
 *   node harness.js publish PLAN   publish the plan's valid events with the typed API, then its
 *                                  invalid vectors raw with amqplib
 *   node harness.js consume PLAN   subscribe to every contract; print each event received,
 *                                  re-serialized from its typed value, as one JSON line
 *   node harness.js roundtrip FILE decode and re-encode `[{type, data}]` (the corpus test)
 *   node harness.js unroutable PLAN publish to an exchange with no queue: report the error
 *   node harness.js worker|publish --url URL ...   the runtime's shared CLI (runtime_cli.ts)
 */
import { readFileSync } from "node:fs";

import * as amqp from "amqplib";

import { CONTRACTS, EventBus, UnroutableError, type EventContract, type EventType } from "../pkg/src/index.js";

import { publish as publishMany, worker } from "./runtime_cli.js";

interface Plan {
  readonly url: string;
  readonly service: string;
  readonly valid: readonly { type: EventType; data: unknown; id: string; subject: string; time: string }[];
  readonly invalid: readonly {
    exchange: string;
    routing_key: string;
    content_type: string | null;
    message_id: string;
    headers: Record<string, string>;
    body_b64: string;
  }[];
  readonly expect_ids: readonly string[];
  readonly exchange?: string;
}

function print(record: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

async function publish(plan: Plan): Promise<void> {
  const bus = await EventBus.connect({ url: plan.url, service: plan.service });
  try {
    for (const item of plan.invalid) {
      const connection = await amqp.connect(plan.url);
      const channel = await connection.createConfirmChannel();
      const options: amqp.Options.Publish = { headers: item.headers, messageId: item.message_id, deliveryMode: 2 };
      if (item.content_type !== null) options.contentType = item.content_type;
      channel.publish(item.exchange, item.routing_key, Buffer.from(item.body_b64, "base64"), options);
      await channel.waitForConfirms();
      await connection.close();
    }
    for (const item of plan.valid) {
      const contract: EventContract<unknown> = CONTRACTS[item.type];
      await bus.publish(contract, contract.check(item.data), { id: item.id, subject: item.subject, time: new Date(item.time) });
    }
    print({ published: plan.valid.length + plan.invalid.length });
  } finally {
    await bus.close();
  }
}

async function consume(plan: Plan): Promise<void> {
  const bus = await EventBus.connect({ url: plan.url, service: plan.service });
  const waiting = new Set(plan.expect_ids);
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  for (const contract of Object.values(CONTRACTS) as EventContract<unknown>[]) {
    await bus.subscribe(contract, (event, context) => {
      if (!waiting.has(context.id)) return; // someone else's event on the shared exchange
      print({
        id: context.id,
        type: context.type,
        source: context.source,
        time: context.time,
        subject: context.subject ?? null,
        dataschema: context.dataschema ?? null,
        data: JSON.parse(JSON.stringify(event)) as unknown,
      });
      waiting.delete(context.id);
      if (waiting.size === 0) finish();
    });
  }
  print({ ready: true });
  process.on("SIGTERM", finish);
  if (waiting.size > 0) await finished;
  await bus.close();
}

/** Publish the first valid event to the plan's exchange, where no queue is bound: report the error. */
async function unroutable(plan: Plan): Promise<void> {
  const bus = await EventBus.connect({ url: plan.url, service: plan.service });
  try {
    const item = plan.valid[0];
    const contract: EventContract<unknown> = { ...CONTRACTS[item.type], exchange: plan.exchange ?? "" };
    await bus.publish(contract, contract.check(item.data), { id: item.id });
    print({ error: null });
  } catch (error) {
    print({ error: error instanceof UnroutableError ? "unroutable" : String(error) });
  } finally {
    await bus.close();
  }
}

/** Decode every `{type, data}` item as its event type and encode it again; print the results. */
function roundtrip(file: string): void {
  const items = JSON.parse(readFileSync(file, "utf8")) as { type: string; data: unknown }[];
  const contracts = CONTRACTS as Readonly<Record<string, EventContract<unknown>>>;
  const results = items.map((item) => {
    try {
      const contract = contracts[item.type];
      const event = contract.decode(Buffer.from(JSON.stringify(item.data), "utf8"));
      return { ok: true, data: JSON.parse(contract.encode(event).toString("utf8")) as unknown };
    } catch (error) {
      return { ok: false, error: String(error) };
    }
  });
  process.stdout.write(`${JSON.stringify(results)}\n`);
}

async function main(): Promise<void> {
  const [command, file] = process.argv.slice(2);
  if (command === "worker") process.exit(await worker(process.argv.slice(3)));
  if (command === "publish" && file.startsWith("--")) process.exit(await publishMany(process.argv.slice(3)));
  if (command === "roundtrip") return roundtrip(file);
  const plan = JSON.parse(readFileSync(file, "utf8")) as Plan;
  if (command === "publish") await publish(plan);
  else if (command === "consume") await consume(plan);
  else if (command === "unroutable") await unroutable(plan);
  else throw new Error(`unknown command ${command}`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
