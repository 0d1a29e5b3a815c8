/**
 * Event contracts at run time: the JSON Schema (authoritative, the very document Python and Go
 * validate with) compiled by Ajv's draft 2020-12 build with formats, from schemas the generated
 * package embeds, so validation never reads a file or the network.
 */
import Ajv2020Module from "ajv/dist/2020.js";
import type { AnySchemaObject, ErrorObject, ValidateFunction } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";

import { EventValidationError, type SchemaViolation } from "./errors.js";
import type { JsonValue } from "./json.js";
import { DEFAULT_LIMITS, type InputLimits, loadJson } from "./limits.js";

// Ajv and ajv-formats are CommonJS modules whose class is also their `default` export.
const Ajv2020 = Ajv2020Module as unknown as typeof Ajv2020Module.default;
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;
type Ajv = InstanceType<typeof Ajv2020>;

/** Everything the bus needs to know about one event type, with the TypeScript type of its data. */
export interface EventContract<T> {
  readonly type: string;
  readonly exchange: string;
  readonly routingKey: string;
  /** The contract's `$id`; written to `cloudEvents_dataschema`. */
  readonly schemaId: string;
  /** Every reason `value` breaks the schema; empty when it is valid. */
  violations(value: unknown): SchemaViolation[];
  /** A type guard backed by the schema. */
  is(value: unknown): value is T;
  /** `value` typed as the event, or an EventValidationError listing every violation. */
  check(value: unknown): T;
  /** Body bytes to a checked event: EnvelopeError (invalid_json, duplicate_key, ...) or EventValidationError otherwise. */
  decode(body: Uint8Array, limits?: InputLimits): T;
  /** A checked event to the exact body bytes that go on the wire. */
  encode(event: T): Buffer;
}

export interface ContractSpec {
  readonly type: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly schemaId: string;
}

const compilers = new WeakMap<object, Ajv>();

function compiler(schemas: Readonly<Record<string, JsonValue>>): Ajv {
  let ajv = compilers.get(schemas);
  if (ajv === undefined) {
    // strict: false because contracts carry annotations Ajv does not know (x-eventbus); the
    // contracts are checked against the 2020-12 metaschema by `eventbus contracts validate`.
    ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
    addFormats(ajv);
    for (const schema of Object.values(schemas)) ajv.addSchema(schema as AnySchemaObject);
    compilers.set(schemas, ajv);
  }
  return ajv;
}

function violation(error: ErrorObject): SchemaViolation {
  return { instancePath: error.instancePath || "/", schemaPath: error.schemaPath, message: error.message ?? error.keyword };
}

/** The run-time contract of one event type, its validator compiled on first use; registered (below). */
export function defineContract<T>(spec: ContractSpec, schemas: Readonly<Record<string, JsonValue>>): EventContract<T> {
  let validate: ValidateFunction | undefined;
  const validator = (): ValidateFunction => {
    if (validate === undefined) {
      const found = compiler(schemas).getSchema(spec.schemaId);
      if (found === undefined) throw new Error(`schema ${spec.schemaId} is not embedded in this package`);
      validate = found;
    }
    return validate;
  };
  const contract: EventContract<T> = {
    type: spec.type,
    exchange: spec.exchange,
    routingKey: spec.routingKey,
    schemaId: spec.schemaId,
    violations(value: unknown): SchemaViolation[] {
      const check = validator();
      return check(value) ? [] : (check.errors ?? []).map(violation);
    },
    is(value: unknown): value is T {
      return validator()(value);
    },
    check(value: unknown): T {
      const check = validator();
      if (!check(value)) throw new EventValidationError(spec.type, (check.errors ?? []).map(violation));
      return value as T;
    },
    decode(body: Uint8Array, limits: InputLimits = DEFAULT_LIMITS): T {
      return contract.check(loadJson(body, limits));
    },
    encode(event: T): Buffer {
      return Buffer.from(JSON.stringify(contract.check(event)), "utf8");
    },
  };
  return registerContract(contract);
}

/*
 * The contracts this process knows, by event type. Every contract made with `defineContract` (so
 * every contract of a generated package, as soon as it is imported) is registered here; a workflow
 * step's slip may only name contracts found here, because each next step's body is validated
 * against its contract before it is published (docs/wire-format.md, "Bad slips").
 */
const contracts = new Map<string, EventContract<unknown>>();

/** Make `contract` known by its type (the last registration of a type wins). */
export function registerContract<T>(contract: EventContract<T>): EventContract<T> {
  contracts.set(contract.type, contract);
  return contract;
}

/** The contract of `type` known in this process, or undefined. */
export function lookupContract(type: string): EventContract<unknown> | undefined {
  return contracts.get(type);
}

/** Whether a contract of `type` is known in this process. */
export function isKnownContract(type: string): boolean {
  return contracts.has(type);
}
