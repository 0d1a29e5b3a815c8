/**
 * Broker URLs: a comma-separated string lists a cluster's nodes (as EVENTBUS_URL does), and every
 * connect tries them in a fresh random order, so a dead node costs one refused attempt.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { shuffled } from "../src/connection.js";
import { ConfigurationError, ConnectionFailedError, EventBus } from "../src/index.js";

test("shuffled keeps every item and varies the order", () => {
  const items = ["a", "b", "c", "d", "e"];
  const orders = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const order = shuffled(items);
    assert.deepEqual([...order].sort(), items);
    orders.add(order.join(""));
  }
  assert.ok(orders.size > 10, `only ${orders.size} orders in 200 shuffles`);
  assert.deepEqual(items, ["a", "b", "c", "d", "e"]); // the input is left as it was
});

test("a comma-separated URL is a list: each entry is checked, and a dead one is skipped", async () => {
  await assert.rejects(
    EventBus.connect({ service: "svc", url: "amqp://127.0.0.1:1/%2F, http://nope" }),
    ConfigurationError,
  );
  await assert.rejects(
    EventBus.connect({ service: "svc", url: "amqp://127.0.0.1:1/%2F,amqp://127.0.0.1:2/%2F", connectTimeoutMs: 2_000 }),
    ConnectionFailedError,
  );
});
