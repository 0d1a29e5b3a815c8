/**
 * Delays on stock RabbitMQ (no plugin), topology v2: binary-decomposed TTL queues, with no I/O;
 * the same names, arguments and routing keys as the Python SDK (eventbus/_delay.py) and the Go
 * runtime, so one set of delay queues serves every language (docs/wire-format.md).
 *
 * A delay is rounded to ticks of 100 ms and written in binary, one routing-key word per bit, most
 * significant first, followed by the name of the queue that should finally get the message. Level
 * k (22 … 0) is a topic exchange `eventbus.delay.v2.<k>` plus a quorum queue of the same name whose
 * `x-message-ttl` is 2^k ticks: a `1` at bit k waits there and is dead-lettered (at least once) to
 * level k-1; a `0` passes straight on. After level 0 the message reaches `eventbus.delay.v2.deliver`,
 * where the target queue is bound with its own name behind 23 `*` words. Every message in one level
 * queue has the same TTL, so a short delay is never stuck behind a long one.
 *
 * Targets: a retry targets the failing consumer's own queue; a delayed publish targets the landing
 * queue `eventbus.delayed.v2.<exchange>.<routing key>` (TTL 0) that dead-letters it to the event's
 * exchange and routing key, so it reaches every subscriber as a direct publish would.
 */
import { ConfigurationError } from "./errors.js";
import type { QueueSpec } from "./topology.js";

export const TICK_MS = 100;
export const DELAY_LEVELS = 23; // 2^23 ticks of 100 ms ≈ 9.7 days > MAX_DELAY_MS
export const MAX_DELAY_MS = 7 * 24 * 3600 * 1000;
/** Every exchange a retry can arrive from starts with it (v1 and v2 alike). */
export const DELAY_PREFIX = "eventbus.delay.";
export const DELAY_V2_PREFIX = "eventbus.delay.v2.";
export const DELIVER_EXCHANGE = "eventbus.delay.v2.deliver";
export const UNROUTABLE_QUEUE = "eventbus.delay.v2.unroutable";
export const LANDING_PREFIX = "eventbus.delayed.v2.";
const MAX_TICKS = Math.floor(MAX_DELAY_MS / TICK_MS);
// Routing keys are at most 255 bytes; 23 bit words and their dots take 46.
export const MAX_TARGET_LENGTH = 255 - 2 * DELAY_LEVELS;
const ANY_BITS = Array.from({ length: DELAY_LEVELS }, () => "*").join(".");

export interface ExchangeSpec {
  readonly name: string;
  readonly type: "topic" | "fanout" | "direct";
  readonly arguments: Readonly<Record<string, unknown>>;
}

/** `source` exchange → `destination` (a queue, or an exchange when `toExchange`). */
export interface Binding {
  readonly source: string;
  readonly destination: string;
  readonly routingKey: string;
  readonly toExchange: boolean;
}

export interface DelayTopology {
  readonly exchanges: readonly ExchangeSpec[];
  readonly queues: readonly QueueSpec[];
  readonly bindings: readonly Binding[];
}

/** Where to publish a message so that it reaches its target after `ticks` ticks. */
export interface DelayRoute {
  readonly exchange: string;
  readonly routingKey: string;
  readonly ticks: number;
}

export function levelName(level: number): string {
  return `${DELAY_V2_PREFIX}${String(level).padStart(2, "0")}`;
}

function nextHop(level: number): string {
  return level > 0 ? levelName(level - 1) : DELIVER_EXCHANGE;
}

/** Every exchange, queue and binding of the delay machinery (shared by all services). */
export function delayTopology(): DelayTopology {
  const exchanges: ExchangeSpec[] = [
    { name: UNROUTABLE_QUEUE, type: "fanout", arguments: {} },
    { name: DELIVER_EXCHANGE, type: "topic", arguments: { "alternate-exchange": UNROUTABLE_QUEUE } },
  ];
  const queues: QueueSpec[] = [{ name: UNROUTABLE_QUEUE, arguments: { "x-queue-type": "quorum" } }];
  const bindings: Binding[] = [{ source: UNROUTABLE_QUEUE, destination: UNROUTABLE_QUEUE, routingKey: "", toExchange: false }];
  for (let level = 0; level < DELAY_LEVELS; level++) {
    const name = levelName(level);
    exchanges.push({ name, type: "topic", arguments: {} });
    queues.push({
      name,
      arguments: {
        "x-queue-type": "quorum",
        "x-message-ttl": TICK_MS * 2 ** level,
        "x-dead-letter-exchange": nextHop(level),
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
      },
    });
    const prefix = "*.".repeat(DELAY_LEVELS - 1 - level);
    bindings.push({ source: name, destination: name, routingKey: `${prefix}1.#`, toExchange: false });
    bindings.push({ source: name, destination: nextHop(level), routingKey: `${prefix}0.#`, toExchange: true });
  }
  return { exchanges, queues, bindings };
}

/** A delay in ms as whole ticks, rounded to the nearest; negative is due now; more than 7 days is refused. */
export function delayTicks(delayMs: number): number {
  if (!Number.isFinite(delayMs)) throw new ConfigurationError(`delay must be a finite number of ms, got ${delayMs}`);
  const ticks = Math.round(Math.max(0, delayMs) / TICK_MS);
  if (ticks > MAX_TICKS) throw new ConfigurationError(`delay of ${delayMs / 1000}s is longer than the maximum of 7 days`);
  return ticks;
}

/** Ticks until `at` (a Date), 0 when it is past. */
export function ticksUntil(at: Date, now: Date = new Date()): number {
  return delayTicks(at.getTime() - now.getTime());
}

function checkTarget(target: string): void {
  if (Buffer.byteLength(target) > MAX_TARGET_LENGTH) {
    throw new ConfigurationError(`queue name '${target}' is too long to be a delay target (${MAX_TARGET_LENGTH} bytes)`);
  }
}

/** Publish to `exchange` with `routingKey` and `target` receives it after `ticks` ticks (first hop: the highest set bit). */
export function delayRoute(ticks: number, target: string): DelayRoute {
  checkTarget(target);
  const bits = ticks.toString(2).padStart(DELAY_LEVELS, "0").split("").join(".");
  const highest = ticks > 0 ? Math.floor(Math.log2(ticks)) : 0;
  return { exchange: levelName(highest), routingKey: `${bits}.${target}`, ticks };
}

/** The key that binds `queue` to the delivery exchange, matching its own name only. */
export function targetBindingKey(queue: string): string {
  checkTarget(queue);
  return `${ANY_BITS}.${queue}`;
}

/** The queue that hands a delayed event to its exchange with its routing key, at once. */
export function landingQueue(exchange: string, routingKey: string): QueueSpec {
  return {
    name: `${LANDING_PREFIX}${exchange}.${routingKey}`,
    arguments: {
      "x-queue-type": "quorum",
      "x-message-ttl": 0,
      "x-dead-letter-exchange": exchange,
      "x-dead-letter-routing-key": routingKey,
      "x-dead-letter-strategy": "at-least-once",
      "x-overflow": "reject-publish",
    },
  };
}
