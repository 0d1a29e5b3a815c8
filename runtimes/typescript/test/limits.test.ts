import assert from "node:assert/strict";
import { test } from "node:test";

import { checkRaw, EnvelopeError, inputLimits, loadJson } from "../src/index.js";

function reason(body: string | Uint8Array): string {
  try {
    loadJson(typeof body === "string" ? Buffer.from(body, "utf8") : body);
  } catch (error) {
    assert.ok(error instanceof EnvelopeError);
    return error.reason;
  }
  return "accepted";
}

test("ordinary JSON passes and parses", () => {
  assert.deepEqual(loadJson(Buffer.from('{"a": [1, 2.5, "x"], "b": {"c": null}}')), { a: [1, 2.5, "x"], b: { c: null } });
  assert.equal(reason('{"n": 9223372036854775807, "m": -9223372036854775808}'), "accepted");
  assert.equal(reason('{"big": 1e19}'), "accepted"); // a float, as in Python
});

test("the same park reasons as the Python SDK", () => {
  assert.equal(reason('{"a": 1, "a": 2}'), "duplicate_key");
  assert.equal(reason('{"a": {"b": 1, "b" : 2}}'), "duplicate_key");
  assert.equal(reason('{"a": 9223372036854775808}'), "number_out_of_range");
  assert.equal(reason("[-9223372036854775809]"), "number_out_of_range");
  assert.equal(reason('{"a": 1e400}'), "invalid_json");
  assert.equal(reason('{"a": "\\ud800"}'), "invalid_json");
  assert.equal(reason(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])), "invalid_json");
  assert.equal(reason(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from("{}")])), "invalid_json");
  assert.equal(reason('{"a": '), "invalid_json");
});

test("keys that look alike inside strings are not duplicates", () => {
  assert.equal(reason('{"a": "x\\":", "b": "\\"a\\": 1"}'), "accepted");
  assert.equal(reason('{"a": "\\ud83d\\ude00"}'), "accepted"); // a surrogate pair is fine
});

test("size and depth are checked on raw bytes", () => {
  const limits = inputLimits({ maxBodyBytes: 10, maxDepth: 3 });
  assert.equal(checkRaw(Buffer.from("[1,2,3,4,5,6,7,8]"), limits)?.reason, "body_too_large");
  assert.equal(checkRaw(Buffer.from("[[[[1]]]]"), inputLimits({ maxDepth: 3 }))?.reason, "too_deep");
  assert.equal(checkRaw(Buffer.from('["[[[[["]'), inputLimits({ maxDepth: 3 })), undefined);
});
