import assert from "node:assert/strict";
import { test } from "node:test";

import { attemptOf, buildHeaders, EnvelopeError, parseEnvelope, parkHeaders, retryHeaders } from "../src/index.js";

const body = Buffer.from('{"a":1}');

test("binary mode round trip with extension attributes", () => {
  const headers = buildHeaders(
    { id: "e1", source: "/s", type: "t.v1", time: "2026-01-01T00:00:00.000Z", subject: "x", dataschema: "https://s", extensions: { partitionkey: "k1", sequence: "7" } },
    { traceparent: "00-abc-def-01" },
  );
  assert.deepEqual(Object.keys(headers), [
    "cloudEvents_specversion", "cloudEvents_id", "cloudEvents_source", "cloudEvents_type", "cloudEvents_time",
    "cloudEvents_subject", "cloudEvents_dataschema", "cloudEvents_partitionkey", "cloudEvents_sequence", "traceparent",
  ]);
  const envelope = parseEnvelope(headers, "application/json", body);
  assert.deepEqual(envelope.attributes.extensions, { partitionkey: "k1", sequence: "7" });
  assert.equal(envelope.attributes.subject, "x");
  assert.throws(() => buildHeaders({ id: "e", source: "s", type: "t", time: "", extensions: { "Bad-Name": "x" } }), EnvelopeError);
});

test("other producers' prefixes and structured mode are read", () => {
  const dash = parseEnvelope({ "ce-specversion": "1.0", "ce-id": "1", "ce-source": "s", "ce-type": "t" }, undefined, body);
  assert.equal(dash.attributes.id, "1");
  const structured = parseEnvelope({}, "application/cloudevents+json", Buffer.from('{"specversion":"1.0","id":"2","source":"s","type":"t","data":{"a":1}}'));
  assert.equal(structured.data.toString(), '{"a":1}');
});

test("bad envelopes carry the wire format's reasons", () => {
  const reason = (run: () => unknown): string => {
    try {
      run();
    } catch (error) {
      return (error as EnvelopeError).reason;
    }
    return "accepted";
  };
  assert.equal(reason(() => parseEnvelope({ cloudEvents_specversion: "1.0", cloudEvents_id: "1", cloudEvents_type: "t" }, "application/json", body)), "missing_attribute");
  assert.equal(reason(() => parseEnvelope({ cloudEvents_specversion: "0.3", cloudEvents_id: "1", cloudEvents_source: "s", cloudEvents_type: "t" }, "application/json", body)), "bad_specversion");
  assert.equal(reason(() => parseEnvelope({}, "text/plain", body)), "unsupported_content_type");
});

test("retry and park copies: the same eventbus- headers as Python, broker headers dropped", () => {
  const original = { cloudEvents_id: "e1", "x-death": [{}], "eventbus-first-failure-at": "2026-01-01T00:00:00.000Z" };
  const now = new Date("2026-02-01T00:00:00.000Z");
  const origin = { exchange: "chat", routingKey: "chat.x.v1", queue: "svc.chat.x.v1", attempt: 2 };
  const retry = retryHeaders(original, { code: "handler_error", error: "Error: x", errorType: "Error" }, origin, 1_500, now);
  assert.equal(retry["x-death"], undefined);
  assert.equal(retry["eventbus-attempt"], 2);
  assert.equal(retry["eventbus-retry-delay-ms"], 1_500);
  assert.equal(retry["eventbus-deliver-at"], "2026-02-01T00:00:01.500Z");
  assert.equal(retry["eventbus-first-failure-at"], "2026-01-01T00:00:00.000Z");
  const parked = parkHeaders(retry, { code: "handler_error", error: "Error: y", errorType: "Error", traceback: "stack" }, { ...origin, attempt: 3 }, now);
  assert.equal(parked["eventbus-park-reason"], "handler_error");
  assert.equal(parked["eventbus-retry-delay-ms"], undefined);
  assert.equal(parked["eventbus-traceback"], "stack");
  assert.equal(parked["eventbus-original-queue"], "svc.chat.x.v1");
  assert.equal(attemptOf(parked), 3);
  assert.equal(attemptOf({ "eventbus-attempt": Buffer.from("4") }), 4);
  assert.equal(attemptOf({}), 1);
});
