import assert from "node:assert/strict";
import { test } from "node:test";

import { describeMismatch, HandlerTimeoutError, ParkMessage, RetryLater, RetryPolicy, TopologyMismatchError } from "../src/index.js";

class Flaky extends Error {}
class Broken extends Error {}

test("exponential backoff, capped, jitter only shortens", () => {
  const policy = new RetryPolicy({ firstDelay: 1_000, factor: 3, maxDelay: 5_000, jitter: 0 });
  assert.deepEqual([1, 2, 3, 4].map((n) => policy.delay(n)), [1_000, 3_000, 5_000, 5_000]);
  const jittered = new RetryPolicy({ firstDelay: 1_000, jitter: 0.5 });
  assert.equal(jittered.delay(1, () => 1), 500);
  assert.equal(jittered.delay(1, () => 0), 1_000);
});

test("decide: retry with the next attempt, park after the last", () => {
  const policy = new RetryPolicy({ maxAttempts: 3, firstDelay: 100, jitter: 0 });
  assert.deepEqual(policy.decide(new Error("x"), 1), { kind: "retry", delayMs: 100, attempt: 2 });
  const parked = policy.decide(new TypeError("boom"), 3);
  assert.ok(!("kind" in parked));
  assert.equal(parked.code, "handler_error");
  assert.equal(parked.error, "TypeError: boom");
  assert.equal(parked.errorType, "TypeError");
  assert.match(parked.traceback ?? "", /boom/);
});

test("handler control: RetryLater and ParkMessage; timeouts park as handler_timeout", () => {
  const policy = new RetryPolicy({ maxAttempts: 3 });
  assert.deepEqual(policy.decide(new RetryLater(7_000), 1), { kind: "retry", delayMs: 7_000, attempt: 2 });
  const later = policy.decide(new RetryLater(7_000), 3);
  assert.ok(!("kind" in later) && later.code === "retry_requested" && later.errorType === "RetryLater");
  const park = policy.decide(new ParkMessage("customer_gone"), 1);
  assert.ok(!("kind" in park) && park.code === "customer_gone" && park.errorType === "ParkMessage");
  const timeout = policy.decide(new HandlerTimeoutError(50, "t", "id"), 3);
  assert.ok(!("kind" in timeout) && timeout.code === "handler_timeout");
});

test("retryOn and giveUpOn", () => {
  const policy = new RetryPolicy({ retryOn: [Flaky], giveUpOn: (error) => error instanceof Broken });
  assert.ok("kind" in policy.decide(new Flaky(), 1));
  assert.ok(!("kind" in policy.decide(new Error("other"), 1)));
  assert.ok(!("kind" in policy.decide(new Broken(), 1)));
});

test("a PRECONDITION_FAILED names the argument and both values", () => {
  const text =
    "Operation failed: QueueDeclare; 406 (PRECONDITION-FAILED) with message \"PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'a.b' in vhost '/': received the value 'quorum' of type 'longstr' but current is none\"";
  const error = describeMismatch(text);
  assert.ok(error instanceof TopologyMismatchError);
  assert.equal(error.entity, "queue 'a.b'");
  assert.match(error.detail, /received the value 'quorum' of type 'longstr' but current is none$/);
});
