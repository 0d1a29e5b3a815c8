/**
 * What to do after a handler failed: try again later, or park. Pure decisions, no I/O, the same as
 * the Python SDK's (eventbus/_retry.py). A retry is a confirmed publish of a copy into the delay
 * queues whose target is the failing consumer's own queue, then an ack of the original; a park is
 * a confirmed publish to `<queue>.dlq`, then an ack. Nothing is held unacked to implement a wait.
 */
import { ConfigurationError, HandlerControl, HandlerTimeoutError, ParkMessage, RetryLater } from "./errors.js";
import type { ParkReason } from "./parking.js";

const TRACEBACK_CHARS = 4000;

/** Error classes, or a predicate, that a policy's `retryOn` / `giveUpOn` match. */
export type ErrorMatcher = readonly (abstract new (...args: never[]) => unknown)[] | ((error: unknown) => boolean);

export interface RetryOptions {
  /** Handler runs, the first one included (1 = never retry). Default 5. */
  readonly maxAttempts?: number;
  /** Delay after the first failure, ms. Default 2 000. */
  readonly firstDelay?: number;
  /** Each further delay is this many times the previous one. Default 4. */
  readonly factor?: number;
  /** Cap on one delay, ms. Default 3 600 000 (1 h). */
  readonly maxDelay?: number;
  /**
   * Spread retries of many messages that failed together: the delay is drawn uniformly from
   * `[d·(1 − jitter), d]`, never above the computed value. Default 0.5; 0 makes delays exact.
   */
  readonly jitter?: number;
  /** What is worth retrying (default: everything). */
  readonly retryOn?: ErrorMatcher;
  /** What never gets better by waiting (a bug, bad data): parked at once. */
  readonly giveUpOn?: ErrorMatcher;
}

/** Try again: a copy that reaches the queue after `delayMs` as attempt `attempt`. */
export interface Retry {
  readonly kind: "retry";
  readonly delayMs: number;
  readonly attempt: number;
}

function matches(matcher: ErrorMatcher | undefined, error: unknown, otherwise: boolean): boolean {
  if (matcher === undefined) return otherwise;
  if (typeof matcher === "function") return matcher(error);
  return matcher.some((kind) => error instanceof kind);
}

export class RetryPolicy {
  readonly maxAttempts: number;
  readonly firstDelay: number;
  readonly factor: number;
  readonly maxDelay: number;
  readonly jitter: number;
  readonly retryOn?: ErrorMatcher;
  readonly giveUpOn?: ErrorMatcher;

  constructor(options: RetryOptions = {}) {
    this.maxAttempts = options.maxAttempts ?? 5;
    this.firstDelay = options.firstDelay ?? 2_000;
    this.factor = options.factor ?? 4;
    this.maxDelay = options.maxDelay ?? 3_600_000;
    this.jitter = options.jitter ?? 0.5;
    this.retryOn = options.retryOn;
    this.giveUpOn = options.giveUpOn;
    if (!Number.isInteger(this.maxAttempts) || this.maxAttempts < 1) {
      throw new ConfigurationError(`maxAttempts must be at least 1, got ${this.maxAttempts}`);
    }
    if (!(this.firstDelay >= 0 && this.maxDelay >= this.firstDelay)) throw new ConfigurationError("backoff needs 0 <= firstDelay <= maxDelay");
    if (!(this.factor >= 1)) throw new ConfigurationError("backoff factor must be at least 1");
    if (!(this.jitter >= 0 && this.jitter <= 1)) throw new ConfigurationError("backoff jitter must be between 0 and 1");
  }

  /** Park on the first failure. */
  static never(): RetryPolicy {
    return new RetryPolicy({ maxAttempts: 1 });
  }

  /** Milliseconds to wait after attempt `failedAttempt` (1-based) failed. */
  delay(failedAttempt: number, random: () => number = Math.random): number {
    const exponent = Math.max(0, failedAttempt - 1);
    const base = exponent > 64 ? this.maxDelay : Math.min(this.maxDelay, this.firstDelay * this.factor ** exponent);
    return this.jitter ? base * (1 - this.jitter * random()) : base;
  }

  /** The fate of a message whose handler threw `error` on attempt `attempt`. */
  decide(error: unknown, attempt: number, random: () => number = Math.random): Retry | ParkReason {
    if (error instanceof ParkMessage) return { code: error.reason, error: error.message, errorType: "ParkMessage" };
    if (attempt >= this.maxAttempts) return failureReason(error);
    if (error instanceof RetryLater) return { kind: "retry", delayMs: error.delayMs, attempt: attempt + 1 };
    if (matches(this.giveUpOn, error, false) || !matches(this.retryOn, error, true)) return failureReason(error);
    return { kind: "retry", delayMs: this.delay(attempt, random), attempt: attempt + 1 };
  }
}

export const DEFAULT_RETRY = new RetryPolicy();

export function isRetry(decision: Retry | ParkReason): decision is Retry {
  return "kind" in decision;
}

/** What the DLQ says about a handler that threw `error` and will not be retried. */
export function failureReason(error: unknown): ParkReason {
  if (error instanceof HandlerControl) return { code: error.reason, error: error.message, errorType: error.name };
  const code = error instanceof HandlerTimeoutError ? "handler_timeout" : "handler_error";
  if (!(error instanceof Error)) return { code, error: `${typeof error}: ${String(error)}`, errorType: typeof error };
  const stack = error.stack ?? "";
  const traceback = stack.length <= TRACEBACK_CHARS ? stack : `${stack.slice(0, TRACEBACK_CHARS - 1)}…`;
  return { code, error: `${error.name}: ${error.message}`, errorType: error.name, traceback };
}
