import assert from "node:assert/strict";
import { test } from "node:test";

import type amqp from "amqplib";

import { AckWindow } from "../src/acks.js";

const delivery = (tag: number): amqp.ConsumeMessage => ({ fields: { deliveryTag: tag } }) as unknown as amqp.ConsumeMessage;
const tags = (messages: amqp.ConsumeMessage[]): number[] => messages.map((m) => m.fields.deliveryTag);

test("a contiguous run of finished deliveries is one multiple ack; out-of-order ones are acked alone", () => {
  const window = new AckWindow();
  const [one, two, three, four, five] = [1, 2, 3, 4, 5].map(delivery);
  for (const message of [one, two, three, four, five]) window.delivered(message);
  window.processed(two);
  window.processed(one);
  window.processed(four); // three still runs
  let frames = window.take();
  assert.equal(frames.upTo?.fields.deliveryTag, 2);
  assert.equal(frames.multiple, true);
  assert.deepEqual(tags(frames.single), [4]);
  window.forget(five); // nacked
  window.processed(three);
  frames = window.take();
  assert.equal(frames.upTo?.fields.deliveryTag, 3);
  assert.equal(frames.multiple, false); // 4 was acked already and 5 nacked: 3 alone
  assert.deepEqual(frames.single, []);
  assert.equal(window.pending, false);
});
