/**
 * The event bus of one service: typed, validated, confirmed publishing (now, after a delay or at a
 * time) and consuming with retries, time limits, middleware and graceful shutdown, at parity with the
 * Python SDK's EventBus on the wire and on the broker.
 *
 * Two connections, as in Python: RabbitMQ blocks publishing connections under a resource alarm,
 * and a consumer sharing one would stop acking too. Both reconnect by themselves.
 *
 *   const bus = await EventBus.connect({ service: "billing", logger: console });
 *   await bus.subscribe(ConversationEndedV1, async (event, ctx) => { ... }, { retry: { maxAttempts: 3 } });
 *   await bus.publish(ConversationEndedV1, event, { delayMs: 60_000 });
 *   bus.closeOnSignals();   // SIGTERM / SIGINT: stop taking, finish in flight, close
 */
import { randomUUID } from "node:crypto";

import type amqp from "amqplib";

import { RobustConnection } from "./connection.js";
import type { EventContract } from "./contract.js";
import type { Middleware } from "./context.js";
import { Consumer, type Handler } from "./consumer.js";
import { delayTicks, TICK_MS, ticksUntil } from "./delay.js";
import { buildHeaders, formatTime, JSON_CONTENT_TYPE } from "./envelope.js";
import { ConfigurationError, PublishError } from "./errors.js";
import { inputLimits, type InputLimits } from "./limits.js";
import { type Logger, SILENT_LOGGER } from "./logger.js";
import { DELIVER_AT_HEADER } from "./parking.js";
import { type OutgoingMessage, Publisher } from "./publisher.js";
import { Requests } from "./requests.js";
import { DEFAULT_RETRY, RetryPolicy, type RetryOptions } from "./retry.js";
import { RedisRevocations } from "./revocations.js";
import { consumerQueueName, DEFAULT_DELIVERY_LIMIT, type QueueType } from "./topology.js";

export const DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F";
const SERVICE_NAME = /^[a-z0-9][a-z0-9._-]*$/;

export interface BusOptions {
  /** The service name: queues are `<service>.<event type>`. */
  readonly service: string;
  /** Broker URL, or several (tried in order on every (re)connect). Default: local RabbitMQ. */
  readonly url?: string | readonly string[];
  /** CloudEvents source; default `/services/<service>`. */
  readonly source?: string;
  /** Unacknowledged deliveries per consumer channel, and so the handlers running at once (default 100). */
  readonly prefetch?: number;
  readonly queueType?: QueueType;
  /** Quorum queues' broker-side `x-delivery-limit` (default 20; 0 leaves it out). */
  readonly deliveryLimit?: number;
  /** How long a publish waits for the broker's confirm (default 30 000 ms). */
  readonly confirmTimeoutMs?: number;
  /** Unconfirmed publishes in flight at once (default 500). */
  readonly publishWindow?: number;
  /** How long a publish keeps waiting for a lost connection to come back before it fails (default 15 000 ms). */
  readonly reconnectWindowMs?: number;
  readonly connectTimeoutMs?: number;
  readonly heartbeatS?: number;
  /** Default retry policy of every handler. */
  readonly retry?: RetryPolicy | RetryOptions;
  /** Default time limit of one handler run (default 600 000 ms; keep it below the broker's consumer_timeout). */
  readonly handlerTimeoutMs?: number;
  readonly limits?: Partial<InputLimits>;
  /** How long in-flight handlers may finish on close (default 30 000 ms). */
  readonly shutdownGraceMs?: number;
  /** Where the library reports; default: nowhere (it never writes to the console by itself). */
  readonly logger?: Logger;
  /**
   * The revocation store (Redis URL, e.g. `redis://127.0.0.1:6379/0`): workflow steps and delayed
   * deliveries whose workflow or id was cancelled/revoked are dropped before they run. Default: none.
   */
  readonly revocationsUrl?: string;
  /** How long one revocation lookup may take before the delivery is handed back (default 5 000 ms). */
  readonly revocationsTimeoutMs?: number;
}

export interface PublishOptions {
  readonly subject?: string;
  /** A deterministic id lets consumers deduplicate a re-publish; default: a random UUID. */
  readonly id?: string;
  /** The event's `time`; default now. (The AMQP timestamp is always the publish time.) */
  readonly time?: Date;
  /** W3C trace context (`traceparent`, `tracestate`) to carry along. */
  readonly trace?: Readonly<Record<string, string>>;
  /** CloudEvents extension attributes (lower-case names), e.g. `{ tenant: "acme" }`. */
  readonly extensions?: Readonly<Record<string, string>>;
  /** The `partitionkey` extension: events of one key are meant to be handled in order. */
  readonly partitionKey?: string;
  /** The `sequence` extension: the event's position among its key's events. */
  readonly sequence?: string;
  /** Deliver after this many ms (0 to 7 days, 100 ms ticks), through the shared delay queues. */
  readonly delayMs?: number;
  /** Deliver at this time (at most 7 days ahead); a past time is due now. */
  readonly at?: Date;
}

export interface SubscribeOptions {
  /** Default `<service>.<event type>`. Several subscriptions may share a queue (dispatch by type). */
  readonly queue?: string;
  /** Default: the contract's routing key. */
  readonly bindingKeys?: readonly string[];
  /** This handler's retry policy; default: the bus's. */
  readonly retry?: RetryPolicy | RetryOptions;
  /** This handler's time limit in ms; default: the bus's. */
  readonly timeoutMs?: number;
  /** Declare the queue with `x-single-active-consumer`: one consumer at a time, in order (docs/ordering.md). */
  readonly singleActiveConsumer?: boolean;
}

export interface RequestOptions<R> {
  /** The contract of the reply; omitted: the reply carries no result and the request resolves to undefined. */
  readonly reply?: EventContract<R>;
  /** How long to wait for the reply (required, > 0). */
  readonly timeoutMs: number;
  readonly subject?: string;
  readonly id?: string;
}

export interface SubscriptionHandle {
  readonly queue: string;
}

function policy(retry: RetryPolicy | RetryOptions | undefined, fallback: RetryPolicy): RetryPolicy {
  if (retry === undefined) return fallback;
  return retry instanceof RetryPolicy ? retry : new RetryPolicy(retry);
}

export class EventBus {
  readonly service: string;
  readonly source: string;
  private readonly consumer: Consumer;
  private readonly requests: Requests;
  private readonly middleware: Middleware[] = [];
  private readonly retry: RetryPolicy;
  private readonly handlerTimeoutMs: number;
  private readonly shutdownGraceMs: number;
  private closing: Promise<void> | undefined;

  private constructor(
    options: BusOptions,
    private readonly publisher: Publisher,
    private readonly connections: readonly RobustConnection[],
    private readonly logger: Logger,
    private readonly revocations?: RedisRevocations,
  ) {
    this.service = options.service;
    this.source = options.source ?? `/services/${options.service}`;
    this.retry = policy(options.retry, DEFAULT_RETRY);
    this.handlerTimeoutMs = options.handlerTimeoutMs ?? 600_000;
    this.shutdownGraceMs = options.shutdownGraceMs ?? 30_000;
    const prefetch = options.prefetch ?? 100;
    if (!(Number.isInteger(prefetch) && prefetch >= 1 && prefetch <= 65535)) throw new ConfigurationError(`prefetch must be between 1 and 65535, got ${prefetch}`);
    this.consumer = new Consumer(connections[1], publisher, {
      prefetch,
      queueType: options.queueType ?? "quorum",
      deliveryLimit: options.deliveryLimit ?? DEFAULT_DELIVERY_LIMIT,
      limits: inputLimits(options.limits),
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      logger,
      middleware: this.middleware,
      source: this.source,
      revocations,
    });
    this.requests = new Requests(publisher, inputLimits(options.limits), logger);
  }

  /** Open the publish connection (the consume connection opens with the first subscription). */
  static async connect(options: BusOptions): Promise<EventBus> {
    if (!SERVICE_NAME.test(options.service ?? "")) {
      throw new ConfigurationError(`service name '${options.service}' must be lowercase letters, digits, '.', '_' or '-' (it becomes part of queue names)`);
    }
    // a string may list a cluster's nodes comma-separated, as EVENTBUS_URL does for every runtime
    const given = options.url === undefined ? [DEFAULT_URL] : typeof options.url === "string" ? options.url.split(",") : [...options.url];
    const urls = given.map((url) => url.trim()).filter((url) => url !== "");
    for (const url of urls) if (!/^amqps?:\/\//.test(url)) throw new ConfigurationError("broker URL must start with amqp:// or amqps://");
    const logger = options.logger ?? SILENT_LOGGER;
    const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    const connection = (role: string): RobustConnection =>
      new RobustConnection({ urls, name: `${options.service}:${role}`, heartbeatS: options.heartbeatS ?? 30, connectTimeoutMs, logger });
    const connections = [connection("publish"), connection("consume")];
    const publisher = new Publisher(connections[0], {
      confirmTimeoutMs: options.confirmTimeoutMs ?? 30_000,
      window: options.publishWindow ?? 500,
      reconnectWindowMs: options.reconnectWindowMs ?? 15_000,
      logger,
    });
    await publisher.start();
    await connections[0].ready(connectTimeoutMs);
    let revocations: RedisRevocations | undefined;
    if (options.revocationsUrl !== undefined) {
      revocations = new RedisRevocations(options.revocationsUrl, options.revocationsTimeoutMs ?? 5_000, logger);
      await revocations.ready();
    }
    return new EventBus(options, publisher, connections, logger, revocations);
  }

  /** Add a middleware around every handler (outermost first); add them before subscribing. */
  use(middleware: Middleware): this {
    this.middleware.push(middleware);
    return this;
  }

  /** Validate, publish (now, or after `delayMs` / at `at`), wait for the broker's confirm; resolves to the event id. */
  async publish<T>(contract: EventContract<T>, event: T, options: PublishOptions = {}): Promise<string> {
    const ticks = this.ticksOf(options);
    const message = this.outgoing(contract, event, options, ticks);
    await this.publisher.send(await this.route(contract, message, ticks));
    return message.properties.messageId as string;
  }

  /**
   * Publish many events with up to `publishWindow` unconfirmed at once; resolves to their ids.
   * Every event is validated before the first is sent. All are attempted; the first failure (in
   * the order given) is thrown after the rest settled, carrying the id of the event it is about.
   */
  async publishMany<T>(contract: EventContract<T>, events: readonly T[], options: Omit<PublishOptions, "id"> = {}): Promise<string[]> {
    const ticks = this.ticksOf(options);
    const messages = events.map((event) => this.outgoing(contract, event, options, ticks));
    const routed = ticks === undefined ? messages : [];
    if (ticks === undefined) await this.publisher.ensureExchange(contract.exchange);
    else for (const message of messages) routed.push(await this.route(contract, message, ticks));
    const failure = (await this.publisher.sendMany(routed)).find((outcome): outcome is PublishError => outcome !== undefined);
    if (failure !== undefined) throw failure;
    return messages.map((message) => message.properties.messageId as string);
  }

  /** Delay ticks for `delayMs` / `at`, undefined for "now". */
  private ticksOf(options: PublishOptions): number | undefined {
    if (options.delayMs !== undefined && options.at !== undefined) throw new ConfigurationError("give delayMs or at, not both");
    if (options.at !== undefined) return ticksUntil(options.at);
    return options.delayMs !== undefined ? delayTicks(options.delayMs) : undefined;
  }

  /** The validated event as the message that goes on the wire (no I/O). */
  private outgoing<T>(contract: EventContract<T>, event: T, options: PublishOptions, ticks: number | undefined): OutgoingMessage {
    const body = contract.encode(event);
    const id = options.id ?? randomUUID();
    const now = new Date();
    const extensions: Record<string, string> = { ...options.extensions };
    if (options.partitionKey !== undefined) extensions.partitionkey = options.partitionKey;
    if (options.sequence !== undefined) extensions.sequence = options.sequence;
    const headers: Record<string, unknown> = buildHeaders(
      { id, source: this.source, type: contract.type, time: formatTime(options.time ?? now), subject: options.subject, dataschema: contract.schemaId, extensions },
      options.trace,
    );
    if (ticks !== undefined) headers[DELIVER_AT_HEADER] = formatTime(new Date(now.getTime() + ticks * TICK_MS));
    const properties: amqp.Options.Publish = {
      mandatory: true,
      contentType: JSON_CONTENT_TYPE,
      deliveryMode: 2,
      messageId: id,
      type: contract.type,
      timestamp: Math.floor(now.getTime() / 1000), // the publish time, whatever the event's `time`
      appId: this.source,
      headers,
    };
    return { exchange: contract.exchange, routingKey: contract.routingKey, body, properties, label: contract.type };
  }

  /** Where the message goes: its exchange now (declared), or the delay queues towards its landing queue. */
  private async route<T>(contract: EventContract<T>, message: OutgoingMessage, ticks: number | undefined): Promise<OutgoingMessage> {
    if (ticks === undefined) {
      await this.publisher.ensureExchange(contract.exchange);
      return message;
    }
    const landing = await this.publisher.ensureLanding(contract.exchange, contract.routingKey);
    return this.publisher.delayed(message, ticks, landing);
  }

  /**
   * Publish `event` as a request and wait for its reply (RabbitMQ direct reply-to, a fresh correlation
   * id): resolves to the reply's data, validated against `options.reply` (undefined without one).
   * Rejects with RemoteTaskError when the responder's handler failed for good (its type and message),
   * RequestTimeoutError after `timeoutMs` (nothing is left behind on the broker; a late reply is
   * dropped), UnroutableError when no queue takes the request.
   */
  request<T, R>(contract: EventContract<T>, event: T, options: RequestOptions<R> & { readonly reply: EventContract<R> }): Promise<R>;
  request<T>(contract: EventContract<T>, event: T, options: RequestOptions<never>): Promise<undefined>;
  async request<T, R>(contract: EventContract<T>, event: T, options: RequestOptions<R>): Promise<R | undefined> {
    const message = this.outgoing(contract, event, { subject: options.subject, id: options.id }, undefined);
    return this.requests.request(message, options.reply, options.timeoutMs);
  }

  /**
   * Declare `<service>.<type>` (quorum, with its `.dlq`), bind it, and call `handler` for every
   * valid event, up to `prefetch` at once. Acked after the handler resolves; a failure is retried
   * through the delay queues by the handler's policy and parked after the last attempt; invalid
   * input is parked at once. Consuming resumes by itself after a reconnect.
   */
  async subscribe<T>(contract: EventContract<T>, handler: Handler<T>, options: SubscribeOptions = {}): Promise<SubscriptionHandle> {
    const queue = options.queue ?? consumerQueueName(this.service, contract.type);
    await this.consumer.add({
      contract: contract,
      handler: handler as Handler<unknown>,
      queue,
      bindingKeys: options.bindingKeys ?? [contract.routingKey],
      retry: policy(options.retry, this.retry),
      timeoutMs: options.timeoutMs ?? this.handlerTimeoutMs,
      singleActiveConsumer: options.singleActiveConsumer,
    });
    return { queue };
  }

  /** Handlers running right now. */
  get busy(): number {
    return this.consumer.busy;
  }

  /** Stop taking deliveries, let in-flight handlers finish within `graceMs`, close both connections. Idempotent. */
  close(graceMs: number = this.shutdownGraceMs): Promise<void> {
    this.closing ??= (async () => {
      await this.consumer.stop(graceMs);
      for (const connection of this.connections) await connection.close();
      await this.revocations?.close();
    })();
    return this.closing;
  }

  /**
   * Close gracefully on the first of `signals` (default SIGTERM and SIGINT): what a worker process
   * does. Resolves once closed; `onClosed` may then exit the process.
   */
  closeOnSignals(signals: readonly NodeJS.Signals[] = ["SIGTERM", "SIGINT"], onClosed?: () => void): Promise<void> {
    return new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals): void => {
        for (const name of signals) process.off(name, stop);
        this.logger.info("shutting down", { signal });
        void this.close().then(() => {
          resolve();
          onClosed?.();
        });
      };
      for (const name of signals) process.once(name, stop);
    });
  }
}
