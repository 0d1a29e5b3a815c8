/**
 * What a handler (and every middleware around it) learns about a delivery besides the event:
 * every CloudEvents attribute, extension attributes included, the attempt number, where the event
 * was first published, and an AbortSignal that fires when the handler's time limit runs out.
 */
import type { CloudEventAttributes } from "./envelope.js";

/** Every CloudEvents attribute (`id`, `source`, `type`, `time`, ..., `extensions`), and the delivery's facts. */
export interface EventContext extends CloudEventAttributes {
  /** The `partitionkey` extension (CloudEvents partitioning), when the producer set one. */
  readonly partitionkey?: string;
  /** The `sequence` extension (CloudEvents sequence), when the producer set one. */
  readonly sequence?: string;
  /** The raw AMQP headers of the delivery. */
  readonly headers: Readonly<Record<string, unknown>>;
  readonly redelivered: boolean;
  /** 1 on the first delivery, then 2, 3, ... on retries. */
  readonly attempt: number;
  readonly queue: string;
  /** Where the event was first published (also on a retry, which arrives through the delay queues). */
  readonly exchange: string;
  readonly routingKey: string;
  /** Aborted when the handler's time limit runs out: pass it to fetch(), database drivers, ... */
  readonly signal: AbortSignal;
}

/** The context middleware sees: the same object the handler gets, plus the decoded event. */
export interface MiddlewareContext extends EventContext {
  readonly event: unknown;
}

/** Wraps every handler: call `next()` to go on, throw to fail the attempt (it is retried or parked). */
export type Middleware = (context: MiddlewareContext, next: () => Promise<void>) => Promise<void>;

export interface Origin {
  readonly queue: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly attempt: number;
  readonly redelivered: boolean;
}

/** The context of one delivery, plus what the consumer needs to end it at its time limit. */
export interface DeliveryContext extends MiddlewareContext {
  /** Called when the time limit runs out: aborts `signal`. */
  abort(reason: unknown): void;
}

/** The context object: the attributes and origin copied in once; the AbortController made only when asked for. */
export function deliveryContext(
  attributes: CloudEventAttributes,
  headers: Readonly<Record<string, unknown>>,
  origin: Origin,
  event: unknown,
): DeliveryContext {
  let controller: AbortController | undefined;
  let aborted: { reason: unknown } | undefined;
  return {
    ...attributes,
    ...origin,
    headers,
    event,
    partitionkey: attributes.extensions.partitionkey,
    sequence: attributes.extensions.sequence,
    get signal(): AbortSignal {
      if (controller === undefined) {
        controller = new AbortController();
        if (aborted !== undefined) controller.abort(aborted.reason);
      }
      return controller.signal;
    },
    abort(reason: unknown): void {
      aborted = { reason };
      controller?.abort(reason);
    },
  };
}
