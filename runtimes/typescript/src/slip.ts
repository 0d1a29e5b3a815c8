/**
 * The routing slip on the wire, with no I/O (docs/wire-format.md, "Workflows: the routing slip"),
 * the same codec and `advance` as the Python SDK (eventbus/workflows/_slip.py); both pass
 * tests/conformance/vectors/slip.json. A step's message carries what remains of its workflow as JSON
 * in `eventbus-workflow-slip`: `{"v": 1, "next": [frame, ...], "on_error": [frame, ...]}`. Parsing is
 * strict (every field checked, unknown ones refused) because a slip is input from the wire: a bad one
 * is parked (`invalid_slip`) before its step runs.
 */
import { v5 as uuidv5 } from "uuid";

import type { JsonValue } from "./json.js";

export const WORKFLOW_HEADER = "eventbus-workflow-id";
export const STEP_HEADER = "eventbus-workflow-step";
export const SLIP_HEADER = "eventbus-workflow-slip";
export const MAX_SLIP_BYTES = 65_536;
export const MAX_SLIP_DEPTH = 32;
/** uuid5(NAMESPACE_URL, "https://eventbus.dev/workflow"): the namespace of step and report ids. */
export const WORKFLOW_NAMESPACE = "7b7075fe-be84-533c-9a0c-f28b35b2e486";
const ID = /^[A-Za-z0-9_.:-]{1,64}$/;

export type StepInput = "none" | "merge" | "field";
type JsonObject = { [key: string]: JsonValue };

/** Publish one event of contract `type` to `exchange`/`routingKey`, its body from `args` and the input. */
export interface StepFrame {
  readonly kind: "step";
  readonly step: string;
  readonly type: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly args: Readonly<JsonObject>;
  readonly input: StepInput;
  readonly field?: string;
}

/** Start every member branch with the same input; their results join as group `group`. */
export interface GroupFrame {
  readonly kind: "group";
  readonly group: string;
  readonly members: readonly (readonly Frame[])[];
}

/** This branch's result is result `index` of the `size` results of group `join`. */
export interface JoinFrame {
  readonly kind: "join";
  readonly join: string;
  readonly index: number;
  readonly size: number;
}

export type Frame = StepFrame | GroupFrame | JoinFrame;

/** What remains of a workflow after the step that carries it. */
export interface Slip {
  readonly next: readonly Frame[];
  readonly onError: readonly Frame[];
}

/** An action of `advance`: publish `body` as step `frame.step` carrying `slip`. */
export interface PublishAction {
  readonly kind: "publish";
  readonly frame: StepFrame;
  readonly body: JsonObject;
  readonly slip: Slip;
}

/** An action of `advance`: report `result` as member `frame.index` of group `frame.join`. */
export interface JoinAction {
  readonly kind: "join";
  readonly frame: JoinFrame;
  readonly result: JsonValue;
  readonly next: readonly Frame[];
  readonly onError: readonly Frame[];
}

export type Action = PublishAction | JoinAction;

/** A slip that cannot be read (park reason `invalid_slip`); the message says what is wrong. */
export class SlipError extends Error {
  readonly reason = "invalid_slip";
  constructor(message: string) {
    super(message);
    this.name = "SlipError";
  }
}

/** A step's result that cannot become the next step's body (park reason `workflow_result_invalid`). */
export class StepResultError extends Error {
  readonly reason = "workflow_result_invalid";
  constructor(message: string) {
    super(message);
    this.name = "StepResultError";
  }
}

/** The CloudEvents id of a step's message: the same for every publish of that step. */
export function stepEventId(workflowId: string, step: string): string {
  return uuidv5(`${workflowId}/${step}`, WORKFLOW_NAMESPACE);
}

/** The id of a report (`completed`, `failed`, `started`, `cancelled`). */
export function reportId(workflowId: string, step: string, what: string): string {
  return uuidv5(`${workflowId}/${step}/${what}`, WORKFLOW_NAMESPACE);
}

// -- JSON <-> frames ----------------------------------------------------------------------------

/** The frame as the wire writes it (`field` only with `"input": "field"`). */
export function frameToJson(frame: Frame): JsonObject {
  if (frame.kind === "step") {
    const out: JsonObject = { step: frame.step, type: frame.type, exchange: frame.exchange, routing_key: frame.routingKey, args: { ...frame.args }, input: frame.input };
    if (frame.input === "field") out.field = frame.field ?? null;
    return out;
  }
  if (frame.kind === "group") return { group: frame.group, members: frame.members.map((member) => member.map(frameToJson)) };
  return { join: frame.join, index: frame.index, size: frame.size };
}

/** The slip header's value: compact JSON (`on_error` only when there is one). */
export function encodeSlip(slip: Slip): string {
  const body: JsonObject = { v: 1, next: slip.next.map(frameToJson) };
  if (slip.onError.length > 0) body.on_error = slip.onError.map(frameToJson);
  return JSON.stringify(body);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function fields(value: unknown, where: string, required: readonly string[], optional: readonly string[] = []): Record<string, unknown> {
  if (!isObject(value)) throw new SlipError(`${where}: a frame must be an object, got ${Array.isArray(value) ? "list" : typeof value}`);
  const missing = required.filter((name) => !(name in value)).sort();
  if (missing.length > 0) throw new SlipError(`${where}: missing ${missing.join(", ")}`);
  const unknown = Object.keys(value).filter((name) => !required.includes(name) && !optional.includes(name)).sort();
  if (unknown.length > 0) throw new SlipError(`${where}: unknown field(s) ${unknown.join(", ")}`);
  return value;
}

function nonEmpty(value: unknown, where: string): string {
  if (typeof value !== "string" || value === "") throw new SlipError(`${where} must be a non-empty string`);
  return value;
}

function ident(value: unknown, where: string): string {
  if (typeof value !== "string" || !ID.test(value)) throw new SlipError(`${where} must match [A-Za-z0-9_.:-]{1,64}, got ${JSON.stringify(value)}`);
  return value;
}

function integer(value: unknown, where: string): number {
  if (typeof value !== "number" || !Number.isInteger(value)) throw new SlipError(`${where} must be an integer, got ${JSON.stringify(value)}`);
  return value;
}

/** One frame from its JSON (SlipError with the path of the first problem). */
export function frameFromJson(value: unknown, where = "frame", depth = 0): Frame {
  if (depth > MAX_SLIP_DEPTH) throw new SlipError(`${where}: nested deeper than ${MAX_SLIP_DEPTH}`);
  if (isObject(value) && "step" in value) {
    const v = fields(value, where, ["step", "type", "exchange", "routing_key", "args", "input"], ["field"]);
    const mode = v.input;
    if (mode !== "none" && mode !== "merge" && mode !== "field") throw new SlipError(`${where}.input must be none, merge or field, got ${JSON.stringify(mode)}`);
    if (!isObject(v.args)) throw new SlipError(`${where}.args must be an object`);
    if ((mode === "field") !== ("field" in v)) throw new SlipError(`${where}: field is given exactly when input is 'field'`);
    const name = mode === "field" ? nonEmpty(v.field, `${where}.field`) : undefined;
    if (typeof v.exchange !== "string") throw new SlipError(`${where}.exchange must be a string`);
    const frame: StepFrame = {
      kind: "step",
      step: ident(v.step, `${where}.step`),
      type: nonEmpty(v.type, `${where}.type`),
      exchange: v.exchange,
      routingKey: nonEmpty(v.routing_key, `${where}.routing_key`),
      args: v.args as JsonObject,
      input: mode,
    };
    return name === undefined ? frame : { ...frame, field: name };
  }
  if (isObject(value) && "group" in value) {
    const v = fields(value, where, ["group", "members"]);
    const members = v.members;
    if (!Array.isArray(members) || members.length === 0) throw new SlipError(`${where}.members must be a non-empty list`);
    const parsed = members.map((member: unknown, i) => {
      if (!Array.isArray(member) || member.length === 0) throw new SlipError(`${where}.members[${i}] must be a non-empty list of frames`);
      return member.map((frame: unknown, j) => frameFromJson(frame, `${where}.members[${i}][${j}]`, depth + 1));
    });
    return { kind: "group", group: ident(v.group, `${where}.group`), members: parsed };
  }
  if (isObject(value) && "join" in value) {
    const v = fields(value, where, ["join", "index", "size"]);
    const index = integer(v.index, `${where}.index`);
    const size = integer(v.size, `${where}.size`);
    if (size < 1 || index < 0 || index >= size) throw new SlipError(`${where}: index ${index} is not in 0..size-1 (size ${size})`);
    return { kind: "join", join: ident(v.join, `${where}.join`), index, size };
  }
  throw new SlipError(`${where}: not a step, group or join frame`);
}

function frameList(value: unknown, where: string): Frame[] {
  if (!Array.isArray(value)) throw new SlipError(`${where} must be a list of frames`);
  return value.map((frame: unknown, i) => frameFromJson(frame, `${where}[${i}]`, 1));
}

function stepTypes(frames: readonly Frame[], into: Set<string>): Set<string> {
  for (const frame of frames) {
    if (frame.kind === "step") into.add(frame.type);
    else if (frame.kind === "group") for (const member of frame.members) stepTypes(member, into);
  }
  return into;
}

/**
 * The slip in a header value (string or Buffer, as amqplib hands it over); SlipError for anything the
 * wire format refuses. `known(type)` says whether a contract is known here: a step frame of an unknown
 * type is refused, since its body could not be validated before it is published.
 */
export function parseSlip(raw: unknown, known?: (type: string) => boolean): Slip {
  let data: Buffer;
  if (Buffer.isBuffer(raw)) data = raw;
  else if (typeof raw === "string") data = Buffer.from(raw, "utf8");
  else throw new SlipError(`the slip header must be a string, got ${raw === null ? "null" : typeof raw}`);
  if (data.length > MAX_SLIP_BYTES) throw new SlipError(`the slip is ${data.length} bytes, more than ${MAX_SLIP_BYTES}`);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(data));
  } catch (error) {
    throw new SlipError(`the slip is not UTF-8 JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  const v = fields(value, "slip", ["v", "next"], ["on_error"]);
  if (v.v !== 1) throw new SlipError(`slip version ${JSON.stringify(v.v)} is not 1`);
  const slip: Slip = { next: frameList(v.next, "slip.next"), onError: frameList(v.on_error ?? [], "slip.on_error") };
  if (known !== undefined) {
    const types = stepTypes(slip.onError, stepTypes(slip.next, new Set()));
    const unknown = [...types].filter((type) => !known(type)).sort();
    if (unknown.length > 0) throw new SlipError(`the slip names contract(s) unknown here: ${unknown.join(", ")}`);
  }
  return slip;
}

// -- advance ------------------------------------------------------------------------------------

/** The body of `frame`'s event given the input `x` (before validation against its contract). */
export function stepBody(frame: StepFrame, x: JsonValue): JsonObject {
  if (frame.input === "none") return { ...frame.args };
  if (frame.input === "merge") {
    if (!isObject(x)) throw new StepResultError(`step ${frame.step} (${frame.type}) merges its input, which must be an object, got ${x === null ? "null" : Array.isArray(x) ? "list" : typeof x}`);
    return { ...x, ...frame.args };
  }
  return { ...frame.args, [frame.field as string]: x };
}

/** What to publish once a branch reached `frames` with the result `x` (see the wire format). */
export function advance(frames: readonly Frame[], x: JsonValue, onError: readonly Frame[] = []): Action[] {
  if (frames.length === 0) return [];
  const [first, ...rest] = frames;
  if (first.kind === "step") return [{ kind: "publish", frame: first, body: stepBody(first, x), slip: { next: rest, onError } }];
  if (first.kind === "group") {
    const size = first.members.length;
    return first.members.flatMap((member, index) => advance([...member, { kind: "join", join: first.group, index, size }, ...rest], x, onError));
  }
  return [{ kind: "join", frame: first, result: x, next: rest, onError }];
}
