/**
 * Steps, results and replies with no broker: the step headers read strictly, advance's publishes as
 * validated messages with deterministic ids, the reports' fields (snake_case, as Python's models), the
 * ok / error replies and reading them back, revocation keys, and x-single-active-consumer.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import type amqp from "amqplib";

import {
  advance, completedReport, ContractError, defineContract, errorReply, EventValidationError, failedReport, isKnownContract,
  type JsonValue, okReply, parseSlip, queueSpecs, readReply, readStep, RemoteTaskError, REPLY_STATUS_HEADER, result,
  revocationKeys, SLIP_HEADER, STEP_HEADER, stepEventId, StepResultError, stepMessages, WORKFLOW_HEADER,
} from "../src/index.js";

const SCHEMAS: Record<string, JsonValue> = {
  a: { $id: "https://t/a.json", type: "object", required: ["n"], properties: { n: { type: "integer" } }, additionalProperties: false },
  b: { $id: "https://t/b.json", type: "object", required: ["n", "square"], properties: { n: { type: "integer" }, square: { type: "integer" } } },
};
const A = defineContract<{ n: number }>({ type: "t.wf.a.v1", exchange: "tasks", routingKey: "t.wf.a.v1", schemaId: "https://t/a.json" }, SCHEMAS);
const B = defineContract<{ n: number; square: number }>({ type: "t.wf.b.v1", exchange: "tasks", routingKey: "t.wf.b.v1", schemaId: "https://t/b.json" }, SCHEMAS);
const WF = "3f1c2a52-8c1e-4d43-9a55-0c0c3b1d2e10";
const stepB = { step: "2", type: B.type, exchange: "tasks", routing_key: B.routingKey, args: {}, input: "merge" };

test("defineContract registers the contract: a slip may name it", () => {
  assert.ok(isKnownContract(A.type) && isKnownContract(B.type));
  assert.ok(!isKnownContract("t.wf.unknown.v1"));
});

test("readStep: no workflow headers is no step; a missing half or a bad slip is invalid_slip", () => {
  assert.equal(readStep({ other: "x" }), undefined);
  assert.equal(readStep({ [STEP_HEADER]: "1" }), undefined); // a step id alone does not make a step (as in Python)
  assert.equal(readStep({ [WORKFLOW_HEADER]: WF })?.error?.reason, "invalid_slip");
  const orphan = readStep({ [SLIP_HEADER]: '{"v":1,"next":[]}', [STEP_HEADER]: "" });
  assert.deepEqual([orphan?.workflowId, orphan?.step, orphan?.error?.message], ["unknown", "unknown", `a workflow step without ${WORKFLOW_HEADER}, ${STEP_HEADER}`]);
  const unknown = readStep({ [WORKFLOW_HEADER]: WF, [STEP_HEADER]: "1", [SLIP_HEADER]: JSON.stringify({ v: 1, next: [{ ...stepB, type: "t.wf.unknown.v1" }] }) });
  assert.match(unknown?.error?.message ?? "", /unknown here: t\.wf\.unknown\.v1/);
  const good = readStep({ [WORKFLOW_HEADER]: Buffer.from(WF), [STEP_HEADER]: "1", [SLIP_HEADER]: JSON.stringify({ v: 1, next: [stepB] }) });
  assert.equal(good?.error, undefined);
  assert.equal(good?.slip?.next.length, 1);
});

test("stepMessages: validated bodies, step ids, workflow headers, the frame's exchange and key", () => {
  const slip = parseSlip(JSON.stringify({ v: 1, next: [stepB, { join: "g", index: 0, size: 2 }] }));
  const { messages, join } = stepMessages(advance(slip.next, { n: 3, square: 9 }, slip.onError), WF, "/services/t");
  assert.equal(join, undefined);
  assert.equal(messages.length, 1);
  const [message] = messages;
  assert.equal(message.exchange, "tasks");
  assert.equal(message.routingKey, B.routingKey);
  assert.equal(message.properties.messageId, stepEventId(WF, "2"));
  assert.deepEqual(JSON.parse(message.body.toString()), { n: 3, square: 9 });
  const headers = message.properties.headers as Record<string, unknown>;
  assert.equal(headers[WORKFLOW_HEADER], WF);
  assert.equal(headers[STEP_HEADER], "2");
  assert.equal(headers[SLIP_HEADER], '{"v":1,"next":[{"join":"g","index":0,"size":2}]}');
  assert.equal(headers.cloudEvents_id, stepEventId(WF, "2"));
  assert.equal(headers.cloudEvents_type, B.type);
  assert.throws(() => stepMessages(advance(slip.next, { n: 3 }, []), WF, "/s"), StepResultError); // breaks B
});

test("reports: snake_case fields, deterministic ids, the join with its result", () => {
  const slip = parseSlip(JSON.stringify({ v: 1, next: [{ join: "g", index: 1, size: 3 }, stepB] }));
  const { join } = stepMessages(advance(slip.next, { n: 2, square: 4 }, []), WF, "/s");
  const report = completedReport({ workflowId: WF, step: "1", type: A.type, attempt: 2, startedAt: new Date(0), resultType: B.type, join }, "/s");
  assert.equal(report.exchange, "eventbus.workflow");
  assert.equal(report.routingKey, "eventbus.workflow.step_completed.v1");
  assert.equal(report.properties.mandatory, false);
  const data = JSON.parse(report.body.toString()) as Record<string, unknown>;
  assert.deepEqual(Object.keys(data), ["workflow_id", "step", "type", "attempt", "started_at", "finished_at", "result_type", "join"]);
  assert.deepEqual(data.join, { group: "g", index: 1, size: 3, result: { n: 2, square: 4 }, next: [stepB], on_error: [] });
  assert.equal(data.started_at, "1970-01-01T00:00:00.000Z");
  const failed = failedReport({ workflow_id: WF, step: "1", type: A.type, message_id: "m", attempt: 1, reason: "invalid_slip", error_type: "SlipError", error: "bad", queue: "q.dlq", failed_at: "2026-01-01T00:00:00.000Z" }, "/s");
  assert.equal(failed.routingKey, "eventbus.workflow.failed.v1");
  assert.equal((failed.properties.headers as Record<string, unknown>).cloudEvents_type, "eventbus.workflow.failed.v1");
});

function incoming(reply: { body: Buffer; properties: amqp.Options.Publish }): amqp.Message {
  return { content: reply.body, properties: reply.properties, fields: {} } as unknown as amqp.Message;
}

test("replies: ok with the result's CloudEvent, error with type and message, both read back", () => {
  const request = { replyTo: "amq.rabbitmq.reply-to.abc", correlationId: "c1" };
  const ok = okReply(request, result(B, { n: 3, square: 9 }), "/s");
  assert.equal(ok.exchange, "");
  assert.equal(ok.routingKey, request.replyTo);
  assert.equal(ok.properties.correlationId, "c1");
  assert.equal((ok.properties.headers as Record<string, unknown>)[REPLY_STATUS_HEADER], "ok");
  assert.deepEqual(readReply(incoming(ok), B, { type: A.type, id: "r1" }), { n: 3, square: 9 });
  assert.throws(() => readReply(incoming(ok), A, { type: A.type, id: "r1" }), ContractError); // another type
  const empty = okReply(request, undefined, "/s");
  assert.equal(readReply(incoming(empty), undefined, { type: A.type, id: "r1" }), undefined);
  assert.throws(() => readReply(incoming(empty), B, { type: A.type, id: "r1" }), ContractError);
  const bad = okReply(request, result(B, { n: 3 } as never), "/s"); // breaks its contract: an error reply
  assert.throws(() => readReply(incoming(bad), B, { type: A.type, id: "r1" }), (e: unknown) => e instanceof RemoteTaskError && e.remoteType === new EventValidationError("x", []).name);
  const error = errorReply(request, "builtins.ValueError", "x".repeat(3000));
  assert.throws(
    () => readReply(incoming(error), B, { type: A.type, id: "r1" }),
    (e: unknown) => e instanceof RemoteTaskError && e.remoteType === "builtins.ValueError" && e.remoteMessage.length === 2000,
  );
});

test("revocation keys: only for workflow steps and delayed deliveries", () => {
  assert.equal(revocationKeys({}, "e1"), undefined);
  assert.deepEqual(revocationKeys({ [WORKFLOW_HEADER]: "w1" }, "e1"), ["eventbus:revoked:w1", "eventbus:revoked:e1"]);
  assert.deepEqual(revocationKeys({ "eventbus-deliver-at": "2026-01-01T00:00:00Z" }, "e1"), ["eventbus:revoked:e1"]);
});

test("singleActiveConsumer declares x-single-active-consumer on the main queue only, as Python", () => {
  const [main, dlq] = queueSpecs("svc.t.v1", "quorum", 20, { singleActiveConsumer: true });
  assert.deepEqual(main.arguments, { "x-queue-type": "quorum", "x-single-active-consumer": true, "x-delivery-limit": 20, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "svc.t.v1.dlq" });
  assert.deepEqual(dlq.arguments, { "x-queue-type": "quorum" });
  assert.equal("x-single-active-consumer" in queueSpecs("svc.t.v1")[0].arguments, false);
});
