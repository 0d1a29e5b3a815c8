import assert from "node:assert/strict";
import { test } from "node:test";

import { ConfigurationError, delayRoute, delayTicks, delayTopology, landingQueue, queueSpecs, targetBindingKey, withoutSafetyNet } from "../src/index.js";

test("delays are 100 ms ticks written in 23 bits, first hop at the highest set bit", () => {
  assert.equal(delayTicks(5_240), 52);
  assert.equal(delayTicks(-5), 0);
  assert.throws(() => delayTicks(8 * 24 * 3600 * 1000), ConfigurationError);
  const route = delayRoute(52, "svc.q");
  assert.equal(route.exchange, "eventbus.delay.v2.05");
  assert.equal(route.routingKey, `${"0.".repeat(17)}1.1.0.1.0.0.svc.q`);
  assert.equal(delayRoute(0, "q").exchange, "eventbus.delay.v2.00");
  assert.equal(targetBindingKey("q"), `${"*.".repeat(23)}q`);
});

test("topology v2: quorum levels with at-least-once dead-lettering, as the brief decided", () => {
  const topology = delayTopology();
  assert.equal(topology.exchanges.length, 25);
  assert.equal(topology.queues.length, 24);
  const level3 = topology.queues.find((queue) => queue.name === "eventbus.delay.v2.03");
  assert.deepEqual(level3?.arguments, {
    "x-queue-type": "quorum",
    "x-message-ttl": 800,
    "x-dead-letter-exchange": "eventbus.delay.v2.02",
    "x-dead-letter-strategy": "at-least-once",
    "x-overflow": "reject-publish",
  });
  const level0 = topology.queues.find((queue) => queue.name === "eventbus.delay.v2.00");
  assert.equal(level0?.arguments["x-dead-letter-exchange"], "eventbus.delay.v2.deliver");
  const deliver = topology.exchanges.find((exchange) => exchange.name === "eventbus.delay.v2.deliver");
  assert.deepEqual(deliver?.arguments, { "alternate-exchange": "eventbus.delay.v2.unroutable" });
  assert.ok(topology.bindings.some((b) => b.source === "eventbus.delay.v2.22" && b.routingKey === "1.#" && !b.toExchange));
  assert.ok(topology.bindings.some((b) => b.source === "eventbus.delay.v2.00" && b.routingKey === `${"*.".repeat(22)}0.#` && b.toExchange));
  assert.deepEqual(landingQueue("chat", "chat.x.v1"), {
    name: "eventbus.delayed.v2.chat.chat.x.v1",
    arguments: {
      "x-queue-type": "quorum",
      "x-message-ttl": 0,
      "x-dead-letter-exchange": "chat",
      "x-dead-letter-routing-key": "chat.x.v1",
      "x-dead-letter-strategy": "at-least-once",
      "x-overflow": "reject-publish",
    },
  });
});

test("consumer queues carry the quorum safety net, as Python declares them", () => {
  const [main, dlq] = queueSpecs("svc.chat.x.v1");
  assert.deepEqual(main.arguments, {
    "x-queue-type": "quorum",
    "x-delivery-limit": 20,
    "x-dead-letter-exchange": "",
    "x-dead-letter-routing-key": "svc.chat.x.v1.dlq",
  });
  assert.deepEqual(dlq, { name: "svc.chat.x.v1.dlq", arguments: { "x-queue-type": "quorum" } });
  assert.deepEqual(queueSpecs("q", "classic")[0].arguments, { "x-queue-type": "classic" });
});

test("a queue from before the safety net is declared as it was, as Python falls back", () => {
  const [main, dlq] = queueSpecs("svc.q");
  assert.deepEqual(withoutSafetyNet(main), { name: "svc.q", arguments: { "x-queue-type": "quorum" } });
  assert.equal(withoutSafetyNet(dlq), undefined);
});
