/**
 * The bus on the real broker, in a private vhost made for this file and deleted after it (needs
 * rabbitmqctl and RabbitMQ on 127.0.0.1:5672; skipped when they are missing). What the Python
 * conformance suite does not reach: time limits, RetryLater / ParkMessage, middleware, extension
 * attributes, bad input parked with its reason, unroutable publishes, delayed publishing with `at`.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";

import amqp from "amqplib";

import {
  defineContract,
  EventBus,
  type EventContext,
  type JsonValue,
  ParkMessage,
  RetryLater,
  UnroutableError,
} from "../src/index.js";

const VHOST = `eb-rt-unit-${randomUUID().slice(0, 8)}`;
const URL = `amqp://guest:guest@127.0.0.1:5672/${VHOST}`;
let available = true;

function rabbitmqctl(...args: string[]): void {
  execFileSync("rabbitmqctl", ["-q", ...args], { stdio: "ignore", timeout: 60_000 });
}

before(() => {
  try {
    rabbitmqctl("add_vhost", VHOST);
    rabbitmqctl("set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*");
  } catch {
    available = false;
  }
});

after(() => {
  if (available) rabbitmqctl("delete_vhost", VHOST);
});

interface Ping {
  n: number;
}

const SCHEMAS: Readonly<Record<string, JsonValue>> = {
  "https://example.test/ping.v1": {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    $id: "https://example.test/ping.v1",
    type: "object",
    required: ["n"],
    properties: { n: { type: "integer" } },
    additionalProperties: false,
  },
};
const PING = defineContract<Ping>({ type: "test.ping.v1", exchange: "test", routingKey: "test.ping.v1", schemaId: "https://example.test/ping.v1" }, SCHEMAS);

async function until<T>(take: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = take();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function parked(queue: string, count: number): Promise<amqp.GetMessage[]> {
  const connection = await amqp.connect(URL);
  const channel = await connection.createChannel();
  const found: amqp.GetMessage[] = [];
  try {
    const deadline = Date.now() + 20_000;
    while (found.length < count && Date.now() < deadline) {
      const message = await channel.get(`${queue}.dlq`, { noAck: true });
      if (message === false) await new Promise((resolve) => setTimeout(resolve, 50));
      else found.push(message);
    }
  } finally {
    await connection.close();
  }
  return found;
}

function header(message: amqp.GetMessage, name: string): string {
  const value: unknown = message.properties.headers?.[name];
  return Buffer.isBuffer(value) ? value.toString("utf8") : String(value);
}

test("handler control, time limits, middleware and extension attributes on the broker", async (t) => {
  if (!available) return t.skip("rabbitmqctl or the broker is not available");
  const service = `unit-${randomUUID().slice(0, 6)}`;
  const bus = await EventBus.connect({ url: URL, service, handlerTimeoutMs: 300 });
  const seen: string[] = [];
  const calls: (EventContext & { n: number })[] = [];
  let aborted = false;
  bus.use(async (context, next) => {
    seen.push(`before ${(context.event as Ping).n}`);
    await next();
    seen.push(`after ${(context.event as Ping).n}`);
  });
  const { queue } = await bus.subscribe(
    PING,
    async (event, context) => {
      calls.push(Object.assign(Object.create(context) as EventContext, { n: event.n }));
      if (event.n === 1) throw new ParkMessage("not_for_us");
      if (event.n === 2 && context.attempt === 1) throw new RetryLater(300);
      if (event.n === 3) {
        context.signal.addEventListener("abort", () => (aborted = true));
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      }
    },
    { retry: { maxAttempts: 2, firstDelay: 100, jitter: 0 } },
  );
  try {
    await bus.publish(PING, { n: 0 }, { partitionKey: "user-7", sequence: "42", extensions: { tenant: "acme" } });
    await bus.publish(PING, { n: 1 });
    const started = Date.now();
    await bus.publish(PING, { n: 2 });
    await bus.publish(PING, { n: 3 }, { at: new Date(Date.now() + 500) });

    const zero = await until(() => calls.find((c) => c.extensions.tenant === "acme"));
    assert.equal(zero.partitionkey, "user-7");
    assert.equal(zero.sequence, "42");
    assert.ok(seen.includes("before 0") && seen.includes("after 0"));

    const retried = await until(() => calls.find((c) => c.attempt === 2 && c.headers["eventbus-retry-delay-ms"] === 300));
    assert.ok(Date.now() - started >= 300);
    assert.equal(retried.exchange, "test"); // where it was first published, though it came through the delay queues

    const dead = await parked(queue, 3); // n=1 at once; n=3 after two timed-out attempts
    const reasons = dead.map((message) => header(message, "eventbus-park-reason")).sort();
    assert.deepEqual(reasons, ["handler_timeout", "not_for_us"]);
    const timeout = dead.find((message) => header(message, "eventbus-park-reason") === "handler_timeout");
    assert.ok(timeout !== undefined);
    assert.equal(header(timeout, "eventbus-attempt"), "2");
    assert.equal(header(timeout, "eventbus-error-type"), "HandlerTimeoutError");
    assert.ok(aborted, "the handler's AbortSignal fired at its time limit");
    assert.equal(calls.filter((c) => c.attempt === 1 && c.n === 3).length, 1);
  } finally {
    await bus.close(2_000);
  }
});

test("bad input is parked with the Python SDK's reasons; an unroutable publish is an error", async (t) => {
  if (!available) return t.skip("rabbitmqctl or the broker is not available");
  const service = `unit-${randomUUID().slice(0, 6)}`;
  const bus = await EventBus.connect({ url: URL, service });
  let handled = 0;
  const { queue } = await bus.subscribe(PING, () => {
    handled += 1;
  });
  const connection = await amqp.connect(URL);
  const channel = await connection.createConfirmChannel();
  try {
    const headers = (id: string): Record<string, string> => ({
      cloudEvents_specversion: "1.0", cloudEvents_id: id, cloudEvents_source: "/raw", cloudEvents_type: "test.ping.v1",
    });
    const bodies: [string, string][] = [
      ["dup", '{"n": 1, "n": 2}'],
      ["big", '{"n": 92233720368547758070}'],
      ["schema", '{"n": "one"}'],
      ["json", '{"n": '],
    ];
    for (const [id, body] of bodies) channel.publish("test", "test.ping.v1", Buffer.from(body), { headers: headers(id), contentType: "application/json", messageId: id });
    await channel.waitForConfirms();
    const dead = await parked(queue, 4);
    const reasons = Object.fromEntries(dead.map((message) => [message.properties.messageId as string, header(message, "eventbus-park-reason")]));
    assert.deepEqual(reasons, { dup: "duplicate_key", big: "number_out_of_range", schema: "schema_invalid", json: "invalid_json" });
    assert.equal(handled, 0);
    const nowhere = defineContract<Ping>({ ...PING, exchange: "test", routingKey: "test.nobody.v1" }, SCHEMAS);
    await assert.rejects(bus.publish(nowhere, { n: 1 }), (error: unknown) => {
      assert.ok(error instanceof UnroutableError);
      assert.match(error.message, /exchange 'test' with routing key 'test.nobody.v1'/);
      return true;
    });
  } finally {
    await connection.close();
    await bus.close();
  }
});
