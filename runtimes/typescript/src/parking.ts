/**
 * The `eventbus-` headers a message gains on its way through retries and into the DLQ, under the
 * same names and with the same values as the Python SDK (eventbus/_parking.py), so `eventbus dlq`
 * reads and replays what any language parked. A retried or parked message is a copy of the
 * original, body and CloudEvents headers byte for byte; the broker's own dead-letter headers
 * (`x-death` ...), which every hop through a delay queue adds, are dropped from the copies.
 */
import { formatTime } from "./envelope.js";

export const ATTEMPT_HEADER = "eventbus-attempt";
export const REASON_HEADER = "eventbus-park-reason";
export const ERROR_HEADER = "eventbus-error";
export const ERROR_TYPE_HEADER = "eventbus-error-type";
export const TRACEBACK_HEADER = "eventbus-traceback";
export const PARKED_AT_HEADER = "eventbus-parked-at";
export const FIRST_FAILURE_HEADER = "eventbus-first-failure-at";
export const LAST_FAILURE_HEADER = "eventbus-last-failure-at";
export const ORIGINAL_EXCHANGE_HEADER = "eventbus-original-exchange";
export const ORIGINAL_ROUTING_KEY_HEADER = "eventbus-original-routing-key";
export const ORIGINAL_QUEUE_HEADER = "eventbus-original-queue";
export const RETRY_DELAY_HEADER = "eventbus-retry-delay-ms";
export const DELIVER_AT_HEADER = "eventbus-deliver-at";

const BROKER_HEADERS = new Set([
  "x-death",
  "x-first-death-exchange",
  "x-first-death-queue",
  "x-first-death-reason",
  "x-last-death-exchange",
  "x-last-death-queue",
  "x-last-death-reason",
  "x-delivery-count",
]);
const MAX_ERROR_TEXT = 2000;

type Headers = Readonly<Record<string, unknown>>;

/** Why a delivery goes to the dead-letter queue: a stable code, a sentence, the error type, a stack. */
export interface ParkReason {
  readonly code: string;
  readonly error: string;
  readonly errorType: string;
  readonly traceback?: string;
}

/** Where the message was first published, the queue that failed it, and the attempt it gets next (retry) or had (park). */
export interface CopyOrigin {
  readonly exchange: string;
  readonly routingKey: string;
  readonly queue: string;
  readonly attempt: number;
}

/** The headers of `original` minus what the broker added on its way. */
export function copyHeaders(original: Headers | undefined): Record<string, unknown> {
  const copy: Record<string, unknown> = {};
  for (const key in original) if (!BROKER_HEADERS.has(key)) copy[key] = original[key];
  return copy;
}

/** A header value as text (amqplib hands long strings over as Buffers). */
function asText(value: unknown): string {
  if (Buffer.isBuffer(value)) return value.toString("utf8");
  return typeof value === "string" ? value : JSON.stringify(value);
}

function short(text: string): string {
  return text.length <= MAX_ERROR_TEXT ? text : `${text.slice(0, MAX_ERROR_TEXT - 1)}…`;
}

function failureHistory(original: Headers | undefined, reason: ParkReason, origin: CopyOrigin, now: Date): [Record<string, unknown>, string] {
  const headers = copyHeaders(original);
  const stamp = formatTime(now);
  const first = headers[FIRST_FAILURE_HEADER];
  headers[FIRST_FAILURE_HEADER] = first === undefined || first === null || first === "" ? stamp : asText(first);
  headers[LAST_FAILURE_HEADER] = stamp;
  headers[ERROR_HEADER] = short(reason.error);
  headers[ERROR_TYPE_HEADER] = reason.errorType;
  headers[ORIGINAL_EXCHANGE_HEADER] = origin.exchange;
  headers[ORIGINAL_ROUTING_KEY_HEADER] = origin.routingKey;
  headers[ORIGINAL_QUEUE_HEADER] = origin.queue;
  headers[ATTEMPT_HEADER] = origin.attempt;
  return [headers, stamp];
}

/** Headers of the copy that comes back to `origin.queue` as attempt `origin.attempt` after `delayMs`. */
export function retryHeaders(
  original: Headers | undefined,
  reason: ParkReason,
  origin: CopyOrigin,
  delayMs: number,
  now: Date = new Date(),
): Record<string, unknown> {
  const [headers] = failureHistory(original, reason, origin, now);
  headers[RETRY_DELAY_HEADER] = delayMs;
  headers[DELIVER_AT_HEADER] = formatTime(new Date(now.getTime() + delayMs));
  return headers;
}

/** The DLQ copy's headers: everything the original had, plus the `eventbus-` diagnosis and history. */
export function parkHeaders(original: Headers | undefined, reason: ParkReason, origin: CopyOrigin, now: Date = new Date()): Record<string, unknown> {
  const [headers, stamp] = failureHistory(original, reason, origin, now);
  delete headers[RETRY_DELAY_HEADER];
  delete headers[DELIVER_AT_HEADER];
  headers[REASON_HEADER] = reason.code;
  headers[PARKED_AT_HEADER] = stamp;
  if (reason.traceback) headers[TRACEBACK_HEADER] = reason.traceback;
  return headers;
}

/** The attempt a delivery is (1 when it carries no or a bad `eventbus-attempt`). */
export function attemptOf(headers: Headers | undefined): number {
  const value = headers?.[ATTEMPT_HEADER];
  if (value === undefined || value === null) return 1;
  const parsed = typeof value === "number" ? value : Number.parseInt(asText(value), 10);
  return Number.isFinite(parsed) && parsed >= 1 ? Math.floor(parsed) : 1;
}
