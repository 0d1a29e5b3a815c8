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

/** The context object: attributes copied once, the AbortController made only when someone asks. */
export class DeliveryContext implements MiddlewareContext {
  readonly id: string;
  readonly source: string;
  readonly type: string;
  readonly time: string;
  readonly subject?: string;
  readonly dataschema?: string;
  readonly datacontenttype: string;
  readonly specversion: string;
  readonly extensions: Readonly<Record<string, string>>;
  readonly queue: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly attempt: number;
  readonly redelivered: boolean;
  private controller: AbortController | undefined;
  private aborted: { reason: unknown } | undefined;

  constructor(
    attributes: CloudEventAttributes,
    readonly headers: Readonly<Record<string, unknown>>,
    origin: Origin,
    readonly event: unknown,
  ) {
    this.id = attributes.id;
    this.source = attributes.source;
    this.type = attributes.type;
    this.time = attributes.time;
    this.subject = attributes.subject;
    this.dataschema = attributes.dataschema;
    this.datacontenttype = attributes.datacontenttype;
    this.specversion = attributes.specversion;
    this.extensions = attributes.extensions;
    this.queue = origin.queue;
    this.exchange = origin.exchange;
    this.routingKey = origin.routingKey;
    this.attempt = origin.attempt;
    this.redelivered = origin.redelivered;
  }

  get partitionkey(): string | undefined {
    return this.extensions.partitionkey;
  }

  get sequence(): string | undefined {
    return this.extensions.sequence;
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.aborted !== undefined) this.controller.abort(this.aborted.reason);
    }
    return this.controller.signal;
  }

  /** Called when the time limit runs out. */
  abort(reason: unknown): void {
    this.aborted = { reason };
    this.controller?.abort(reason);
  }
}
