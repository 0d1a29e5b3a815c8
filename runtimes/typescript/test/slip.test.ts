/**
 * The routing slip against the shared vectors (tests/conformance/vectors/slip.json), which the Python
 * and Go codecs pass too: parse with only the vector's contracts known, then advance and compare every
 * action (publish: step, type, exchange, routing key, event id, body, slip; join: its fields), or the
 * error (invalid_slip when parsing, workflow_result_invalid when building a body).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { type Action, advance, encodeSlip, frameToJson, type JsonValue, parseSlip, reportId, SlipError, stepEventId, StepResultError } from "../src/index.js";

interface Case {
  readonly name: string;
  readonly slip: string;
  readonly input: JsonValue;
  readonly actions?: readonly Record<string, Record<string, JsonValue>>[];
  readonly error?: string;
}

interface Vectors {
  readonly workflow_id: string;
  readonly known: readonly string[];
  readonly cases: readonly Case[];
}

function findVectors(): string {
  for (let folder = dirname(fileURLToPath(import.meta.url)); folder !== dirname(folder); folder = dirname(folder)) {
    const candidate = join(folder, "tests", "conformance", "vectors", "slip.json");
    try {
      readFileSync(candidate);
      return candidate;
    } catch {
      continue;
    }
  }
  throw new Error("tests/conformance/vectors/slip.json not found above the test");
}

const vectors = JSON.parse(readFileSync(findVectors(), "utf8")) as Vectors;
const known = (type: string): boolean => vectors.known.includes(type);

function normalizeSlip(slip: Record<string, JsonValue>): Record<string, JsonValue> {
  return { v: slip.v, next: slip.next, on_error: slip.on_error ?? [] };
}

function asVector(action: Action): Record<string, Record<string, JsonValue>> {
  if (action.kind === "join") {
    return { join: { group: action.frame.join, index: action.frame.index, size: action.frame.size, result: action.result, next: action.next.map(frameToJson), on_error: action.onError.map(frameToJson) } };
  }
  const slip = JSON.parse(encodeSlip(action.slip)) as Record<string, JsonValue>;
  return {
    publish: {
      step: action.frame.step, type: action.frame.type, exchange: action.frame.exchange, routing_key: action.frame.routingKey,
      event_id: stepEventId(vectors.workflow_id, action.frame.step), body: action.body, slip: normalizeSlip(slip),
    },
  };
}

test("the vectors are there", () => {
  assert.ok(vectors.cases.length >= 30);
});

for (const vector of vectors.cases) {
  test(`slip vector: ${vector.name}`, () => {
    const run = (): Action[] => {
      const slip = parseSlip(vector.slip, known);
      return advance(slip.next, vector.input, slip.onError);
    };
    if (vector.error === "invalid_slip") {
      assert.throws(run, SlipError);
      return;
    }
    if (vector.error === "workflow_result_invalid") {
      assert.throws(run, StepResultError);
      return;
    }
    assert.equal(vector.error, undefined, `unknown error kind ${String(vector.error)}`);
    const expected = (vector.actions ?? []).map((action) =>
      "publish" in action ? { publish: { ...action.publish, slip: normalizeSlip(action.publish.slip as Record<string, JsonValue>) } } : action,
    );
    assert.deepEqual(run().map(asVector), expected);
  });
}

test("a slip survives encode then parse, Buffer headers included", () => {
  const raw = '{"v":1,"next":[{"group":"g","members":[[{"step":"a","type":"t.v1","exchange":"x","routing_key":"t.v1","args":{},"input":"merge"}]]}],"on_error":[{"join":"j","index":0,"size":1}]}';
  const slip = parseSlip(Buffer.from(raw, "utf8"));
  assert.equal(encodeSlip(slip), raw);
  assert.equal(encodeSlip({ next: [], onError: [] }), '{"v":1,"next":[]}');
});

test("a byte order mark, a number or bytes that are not UTF-8 are not a slip", () => {
  assert.throws(() => parseSlip('\ufeff{"v":1,"next":[]}'), SlipError);
  assert.throws(() => parseSlip(7), SlipError);
  assert.throws(() => parseSlip(Buffer.from([0x7b, 0xff, 0x7d])), SlipError);
});

test("step and report ids are uuid5 in the workflow namespace, as in Python", () => {
  // uuid.uuid5(uuid.UUID("7b7075fe-be84-533c-9a0c-f28b35b2e486"), "w/1") and ".../completed"
  assert.equal(stepEventId("3f1c2a52-8c1e-4d43-9a55-0c0c3b1d2e10", "1"), "d61b0341-7a14-528a-9b18-945adc2059a8");
  assert.equal(reportId("w", "1", "completed"), "860bba88-a2b9-5419-b370-9edaaeaf0425");
  assert.equal(reportId("w", "1", "failed"), "c21110aa-fd69-507e-b9f4-c23f7d31a18b");
});
