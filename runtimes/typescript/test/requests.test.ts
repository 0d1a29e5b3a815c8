/**
 * Request-reply between two Node buses on the broker, in a private vhost made for this file (skipped
 * without rabbitmqctl): a typed reply, a remote error after the retry (the retry copy keeps reply_to,
 * the park copy drops it), concurrent requests matched by correlation id, a timeout whose late reply
 * does not reach the next request, and no reply queue left behind.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";

import amqp from "amqplib";

import { defineContract, EventBus, type JsonValue, RemoteTaskError, RequestTimeoutError, result } from "../src/index.js";

const VHOST = `eb-rt-rpc-${randomUUID().slice(0, 8)}`;
const URL = `amqp://guest:guest@127.0.0.1:5672/${VHOST}`;
let available = true;

function rabbitmqctl(...args: string[]): string {
  return execFileSync("rabbitmqctl", ["-q", ...args], { encoding: "utf8", timeout: 60_000 });
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

const SCHEMAS: Readonly<Record<string, JsonValue>> = {
  "https://example.test/double.v1": { $id: "https://example.test/double.v1", type: "object", required: ["n"], properties: { n: { type: "integer" } }, additionalProperties: false },
  "https://example.test/doubled.v1": { $id: "https://example.test/doubled.v1", type: "object", required: ["value"], properties: { value: { type: "integer" } }, additionalProperties: false },
};
const DOUBLE = defineContract<{ n: number }>({ type: "test.double.v1", exchange: "test", routingKey: "test.double.v1", schemaId: "https://example.test/double.v1" }, SCHEMAS);
const DOUBLED = defineContract<{ value: number }>({ type: "test.doubled.v1", exchange: "test", routingKey: "test.doubled.v1", schemaId: "https://example.test/doubled.v1" }, SCHEMAS);

function queues(): string[] {
  return rabbitmqctl("list_queues", "-p", VHOST, "--no-table-headers", "name").split("\n").map((line) => line.trim()).filter((line) => line !== "").sort();
}

test("request-reply between Node buses on the broker", async (t) => {
  if (!available) return t.skip("rabbitmqctl or the broker is not available");
  const responder = await EventBus.connect({ url: URL, service: "doubler" });
  const caller = await EventBus.connect({ url: URL, service: "caller" });
  let calls = 0;
  try {
    await responder.subscribe(DOUBLE, async (task) => {
      calls++;
      if (task.n < 0) throw new RangeError(`negative ${task.n}`);
      if (task.n >= 1000) await new Promise((resolve) => setTimeout(resolve, 1_500));
      return result(DOUBLED, { value: task.n * 2 });
    }, { retry: { maxAttempts: 2, firstDelay: 100, factor: 1, jitter: 0 } });

    assert.deepEqual(await caller.request(DOUBLE, { n: 21 }, { reply: DOUBLED, timeoutMs: 15_000 }), { value: 42 });
    assert.equal(await caller.request(DOUBLE, { n: 1 }, { timeoutMs: 15_000 }), undefined); // no result expected

    calls = 0;
    await assert.rejects(caller.request(DOUBLE, { n: -3 }, { reply: DOUBLED, timeoutMs: 15_000 }), (error: unknown) => {
      assert.ok(error instanceof RemoteTaskError);
      assert.equal(error.remoteType, "RangeError");
      assert.equal(error.remoteMessage, "negative -3");
      return true;
    });
    assert.equal(calls, 2); // the retry copy kept reply_to: the last attempt answered
    const connection = await amqp.connect(URL);
    try {
      const channel = await connection.createChannel();
      const parked = await channel.get("doubler.test.double.v1.dlq", { noAck: true });
      assert.ok(parked !== false);
      assert.equal(parked.properties.replyTo, undefined); // a replay from the DLQ answers no one
    } finally {
      await connection.close();
    }

    const many = await Promise.all([...Array(30).keys()].map((n) => caller.request(DOUBLE, { n }, { reply: DOUBLED, timeoutMs: 15_000 })));
    assert.deepEqual(many.map((reply) => reply.value), [...Array(30).keys()].map((n) => n * 2));

    const before = queues();
    await assert.rejects(caller.request(DOUBLE, { n: 1000 }, { reply: DOUBLED, timeoutMs: 300 }), RequestTimeoutError);
    await new Promise((resolve) => setTimeout(resolve, 1_500)); // its reply comes late and is dropped
    assert.deepEqual(await caller.request(DOUBLE, { n: 4 }, { reply: DOUBLED, timeoutMs: 15_000 }), { value: 8 });
    assert.deepEqual(queues(), before);
    assert.ok(!queues().some((name) => name.startsWith("amq.") || name.includes("reply")));
  } finally {
    await caller.close(1_000);
    await responder.close(3_000);
  }
});
