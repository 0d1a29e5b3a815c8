/**
 * The reply of request-reply on the wire, with no I/O (docs/wire-format.md, "Request-reply"), as the
 * Python SDK writes and reads it (eventbus/_replies.py). A request is an event with `replyTo` (RabbitMQ's
 * direct reply-to) and `correlationId`; whoever settles it answers once, on the default exchange with
 * routing key = the request's `replyTo` and the same `correlationId`:
 *
 *   ok     `eventbus-reply-status: ok`; the handler's result as a CloudEvent of its contract, or an
 *          empty body when it returned nothing
 *   error  `eventbus-reply-status: error`, `eventbus-error-type` and `eventbus-error`; empty body.
 *          Sent once the request is parked (last attempt failed, or bad input), never on a retry.
 *
 * Replies are published without `mandatory`: RabbitMQ returns a mandatory publish to a direct
 * reply-to name even when it delivers it, and a reply to a requester that is gone is simply dropped.
 */
import type amqp from "amqplib";

import type { EventContract } from "./contract.js";
import { JSON_CONTENT_TYPE, parseEnvelope } from "./envelope.js";
import { ContractError, EnvelopeError, EventValidationError, RemoteTaskError } from "./errors.js";
import { DEFAULT_LIMITS, type InputLimits } from "./limits.js";
import { wrapEncoded } from "./outgoing.js";
import { ERROR_HEADER, ERROR_TYPE_HEADER } from "./parking.js";
import type { OutgoingMessage } from "./publisher.js";
import type { TaskResult } from "./results.js";

export const REPLY_STATUS_HEADER = "eventbus-reply-status";
const MAX_ERROR_TEXT = 2000;

/** The request's AMQP properties a reply needs. */
export interface RequestProperties {
  readonly replyTo: string;
  readonly correlationId?: string;
}

function text(value: unknown): string {
  if (Buffer.isBuffer(value)) return value.toString("utf8");
  return typeof value === "string" || typeof value === "number" ? String(value) : "";
}

/** The `error` reply: the responder's exception type and message. */
export function errorReply(request: RequestProperties, errorType: string, error: string): OutgoingMessage {
  const headers = { [REPLY_STATUS_HEADER]: "error", [ERROR_TYPE_HEADER]: errorType, [ERROR_HEADER]: error.slice(0, MAX_ERROR_TEXT) };
  const properties: amqp.Options.Publish = { mandatory: false, headers, correlationId: request.correlationId };
  return { exchange: "", routingKey: request.replyTo, body: Buffer.alloc(0), properties, label: "error reply" };
}

/**
 * The `ok` reply carrying `value` (a result of a contract, or nothing). A result that breaks its
 * contract is answered as an error (EventValidationError), so the caller learns at once instead of
 * timing out.
 */
export function okReply(request: RequestProperties, value: TaskResult | undefined, source: string): OutgoingMessage {
  if (value === undefined) {
    const properties: amqp.Options.Publish = { mandatory: false, headers: { [REPLY_STATUS_HEADER]: "ok" }, correlationId: request.correlationId };
    return { exchange: "", routingKey: request.replyTo, body: Buffer.alloc(0), properties, label: "reply" };
  }
  let body: Buffer;
  try {
    body = value.contract.encode(value.data);
  } catch (error) {
    if (!(error instanceof EventValidationError)) throw error;
    return errorReply(request, error.name, error.message);
  }
  const message = wrapEncoded(value.contract, body, { source, headers: { [REPLY_STATUS_HEADER]: "ok" }, mandatory: false });
  return { ...message, exchange: "", routingKey: request.replyTo, properties: { ...message.properties, correlationId: request.correlationId } };
}

/**
 * The typed result in `reply` (an event of `expected`, or undefined when no result is expected).
 * RemoteTaskError for an error reply, ContractError when the reply is not of `expected`'s contract,
 * EventValidationError when its data breaks that contract, EnvelopeError for a malformed reply.
 */
export function readReply<R>(
  reply: amqp.Message,
  expected: EventContract<R> | undefined,
  request: { readonly type: string; readonly id: string },
  limits: InputLimits = DEFAULT_LIMITS,
): R | undefined {
  const headers: Readonly<Record<string, unknown>> = reply.properties.headers ?? {};
  const status = text(headers[REPLY_STATUS_HEADER]);
  if (status === "error") {
    throw new RemoteTaskError(text(headers[ERROR_TYPE_HEADER]) || "Exception", text(headers[ERROR_HEADER]), request.type, request.id);
  }
  if (status !== "ok") throw new EnvelopeError("malformed_reply", `reply to ${request.type} ${request.id} has no valid ${REPLY_STATUS_HEADER} header (got '${status}')`);
  if (expected === undefined) return undefined;
  if (reply.content.length === 0) throw new ContractError(`the handler of ${request.type} returned no result; expected ${expected.type}`);
  const contentType: unknown = reply.properties.contentType;
  const envelope = parseEnvelope(headers, typeof contentType === "string" ? contentType : JSON_CONTENT_TYPE, reply.content, limits);
  if (envelope.attributes.type !== expected.type) {
    throw new ContractError(`the reply to ${request.type} is a ${envelope.attributes.type}, expected ${expected.type}`);
  }
  return expected.decode(envelope.data, limits);
}
