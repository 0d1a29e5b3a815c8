/**
 * CloudEvents 1.0 over AMQP 0-9-1, binary content mode, exactly as docs/wire-format.md says and the
 * Python SDK (eventbus/_envelope.py) does: body = the event data as JSON, attributes in
 * `cloudEvents_*` headers, extension attributes (`partitionkey`, `sequence`, ...) included. Readers
 * also accept `cloudEvents:`, `ce-` and `ce_` headers and structured mode
 * (`application/cloudevents+json`, the whole event in the body).
 */
import { EnvelopeError } from "./errors.js";
import { DEFAULT_LIMITS, type InputLimits, loadJson } from "./limits.js";

export const SPECVERSION = "1.0";
export const HEADER_PREFIX = "cloudEvents_";
export const JSON_CONTENT_TYPE = "application/json";
export const STRUCTURED_CONTENT_TYPE = "application/cloudevents+json";
/** W3C trace context travels unprefixed so tracers in every language find it. */
export const TRACE_HEADERS = ["traceparent", "tracestate"] as const;

const READ_PREFIXES = ["cloudEvents_", "cloudEvents:", "ce-", "ce_"] as const;
const REQUIRED = ["specversion", "id", "source", "type"] as const;
const KNOWN = new Set(["specversion", "id", "source", "type", "time", "subject", "dataschema", "datacontenttype"]);
const EXTENSION_NAME = /^[a-z0-9]{1,20}$/;

/** The context attributes of one event, as strings, exactly as they go on the wire. */
export interface CloudEventAttributes {
  readonly id: string;
  readonly source: string;
  readonly type: string;
  readonly time: string;
  readonly subject?: string;
  readonly dataschema?: string;
  readonly datacontenttype: string;
  readonly specversion: string;
  /** Extension attributes by name (`partitionkey`, `sequence`, ...), as strings. */
  readonly extensions: Readonly<Record<string, string>>;
}

export interface IncomingEnvelope {
  readonly attributes: CloudEventAttributes;
  readonly data: Buffer;
  readonly structured: boolean;
}

/** RFC 3339 in UTC with a `Z`, the form every CloudEvents SDK parses. */
export function formatTime(moment: Date): string {
  return moment.toISOString();
}

/** An extension attribute name as CloudEvents allows it: lower-case letters and digits. */
export function checkExtensionName(name: string): void {
  if (!EXTENSION_NAME.test(name) || KNOWN.has(name)) {
    throw new EnvelopeError("invalid_attribute", `'${name}' is not a CloudEvents extension attribute name (a-z, 0-9, at most 20)`);
  }
}

/** The AMQP headers of binary mode, in wire order; datacontenttype travels in the content_type property. */
export function buildHeaders(
  attributes: Omit<CloudEventAttributes, "datacontenttype" | "specversion" | "extensions"> & {
    readonly extensions?: Readonly<Record<string, string>>;
  },
  trace?: Readonly<Record<string, string>>,
): Record<string, string> {
  const headers: Record<string, string> = {
    cloudEvents_specversion: SPECVERSION,
    cloudEvents_id: attributes.id,
    cloudEvents_source: attributes.source,
    cloudEvents_type: attributes.type,
    cloudEvents_time: attributes.time,
  };
  if (attributes.subject !== undefined) headers.cloudEvents_subject = attributes.subject;
  if (attributes.dataschema) headers.cloudEvents_dataschema = attributes.dataschema;
  for (const [name, value] of Object.entries(attributes.extensions ?? {})) {
    checkExtensionName(name);
    headers[HEADER_PREFIX + name] = value;
  }
  for (const name of TRACE_HEADERS) {
    const value = trace?.[name];
    if (value !== undefined) headers[name] = value;
  }
  return headers;
}

function text(value: unknown, name: string): string {
  if (name === "time" && typeof value === "number") return formatTime(new Date(value)); // AMQP timestamp in ms
  if (Buffer.isBuffer(value)) return value.toString("utf8");
  if (value instanceof Date) return formatTime(value);
  return String(value);
}

function mediaType(contentType: string | undefined): string | undefined {
  if (contentType === JSON_CONTENT_TYPE) return contentType;
  if (contentType === undefined || contentType === null) return undefined;
  return contentType.split(";", 1)[0].trim().toLowerCase();
}

function isJson(media: string): boolean {
  return media === JSON_CONTENT_TYPE || (media.startsWith("application/") && media.endsWith("+json"));
}

function attributesFrom(found: Map<string, string>, contentType: string): CloudEventAttributes {
  const missing = REQUIRED.filter((name) => !found.get(name));
  if (missing.length > 0) {
    throw new EnvelopeError("missing_attribute", `CloudEvents attribute(s) missing: ${missing.join(", ")}`);
  }
  const specversion = found.get("specversion") as string;
  if (specversion !== SPECVERSION) {
    throw new EnvelopeError("bad_specversion", `unsupported CloudEvents specversion '${specversion}'`);
  }
  const extensions: Record<string, string> = {};
  for (const [name, value] of found) if (!KNOWN.has(name)) extensions[name] = value;
  return {
    id: found.get("id") as string,
    source: found.get("source") as string,
    type: found.get("type") as string,
    time: found.get("time") ?? "",
    subject: found.get("subject"),
    dataschema: found.get("dataschema"),
    datacontenttype: contentType,
    specversion,
    extensions,
  };
}

const attributeNames = new Map<string, string | null>();

/** The attribute a header carries (`cloudEvents_id` → `id`), null for other headers; cached, bounded. */
function attributeName(header: string): string | null {
  let name = attributeNames.get(header);
  if (name === undefined) {
    const prefix = READ_PREFIXES.find((p) => header.startsWith(p));
    name = prefix === undefined ? null : header.slice(prefix.length).toLowerCase();
    if (attributeNames.size < 1024) attributeNames.set(header, name);
  }
  return name;
}

/** Read the CloudEvent out of one delivery; an EnvelopeError's reason says why it cannot be one of ours. */
export function parseEnvelope(
  headers: Readonly<Record<string, unknown>> | undefined,
  contentType: string | undefined,
  body: Buffer,
  limits: InputLimits = DEFAULT_LIMITS,
): IncomingEnvelope {
  let media = mediaType(contentType);
  if (media === STRUCTURED_CONTENT_TYPE) return parseStructured(body, limits);
  const found = new Map<string, string>();
  for (const key in headers) {
    const name = attributeName(key);
    const value = headers[key];
    if (name === null || value === undefined || value === null || found.has(name)) continue;
    found.set(name, typeof value === "string" ? value : text(value, name));
  }
  if (media === undefined) media = mediaType(found.get("datacontenttype")) ?? JSON_CONTENT_TYPE;
  if (!isJson(media)) {
    throw new EnvelopeError("unsupported_content_type", `content type '${contentType}' is not JSON`);
  }
  return { attributes: attributesFrom(found, media), data: body, structured: false };
}

function parseStructured(body: Buffer, limits: InputLimits): IncomingEnvelope {
  const event = loadJson(body, limits);
  if (typeof event !== "object" || event === null || Array.isArray(event)) {
    throw new EnvelopeError("invalid_envelope", "structured CloudEvent is not a JSON object");
  }
  const record = event as Record<string, unknown>;
  const media = mediaType(typeof record.datacontenttype === "string" ? record.datacontenttype : undefined) ?? JSON_CONTENT_TYPE;
  if (!isJson(media)) throw new EnvelopeError("unsupported_content_type", `datacontenttype '${media}' is not JSON`);
  let data: Buffer;
  if (typeof record.data_base64 === "string") data = Buffer.from(record.data_base64, "base64");
  else if ("data" in record) data = Buffer.from(JSON.stringify(record.data), "utf8");
  else throw new EnvelopeError("invalid_envelope", "structured CloudEvent has no data");
  const found = new Map<string, string>();
  for (const [key, value] of Object.entries(record)) {
    if (key === "data" || key === "data_base64" || value === null || value === undefined) continue;
    found.set(key, text(value, key));
  }
  return { attributes: attributesFrom(found, media), data, structured: true };
}
