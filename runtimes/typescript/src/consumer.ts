/**
 * Consuming: every queue of one bus on one channel of the consume connection, restored after every
 * reconnect. Each delivery goes through the same steps as in the Python SDK (eventbus/_dispatch.py,
 * _async_consumer.py):
 *
 *   raw limits → envelope → handler for its type → contract (JSON + schema) → middleware + handler
 *   under its time limit → ack; or, on failure, the handler's RetryPolicy decides:
 *     retry → a confirmed copy into the delay queues, targeted at this queue, then ack;
 *     park  → a confirmed copy into `<queue>.dlq` with the `eventbus-` diagnosis, then ack.
 *   Bad input is parked at once (no retries). A copy that cannot be published is handed back
 *   (nack, requeue) so nothing is lost.
 *
 * Concurrency: every delivery starts its handler at once, as a promise; the channel's prefetch
 * bounds how many run together. An ack or nack goes only to the channel the delivery came on: after
 * a reconnect that channel is gone and the broker has already put the delivery back.
 */
import type amqp from "amqplib";

import { AckWindow } from "./acks.js";
import { RobustConnection } from "./connection.js";
import type { EventContract } from "./contract.js";
import { DeliveryContext, type EventContext, type Middleware } from "./context.js";
import { type Deadline, Deadlines } from "./deadlines.js";
import { declare, domainExchange } from "./declare.js";
import { DELAY_PREFIX, delayTicks, DELIVER_EXCHANGE, TICK_MS, targetBindingKey } from "./delay.js";
import { parseEnvelope } from "./envelope.js";
import { EnvelopeError, EventValidationError, HandlerTimeoutError, TopologyMismatchError } from "./errors.js";
import { checkRaw, type InputLimits } from "./limits.js";
import type { Logger } from "./logger.js";
import {
  attemptOf,
  ORIGINAL_EXCHANGE_HEADER,
  ORIGINAL_ROUTING_KEY_HEADER,
  parkHeaders,
  type ParkReason,
  retryHeaders,
} from "./parking.js";
import type { OutgoingMessage, Publisher } from "./publisher.js";
import { failureReason, isRetry, type RetryPolicy } from "./retry.js";
import { deadLetterQueueName, queueSpecs, type QueueType, withoutSafetyNet } from "./topology.js";

export type Handler<T> = (event: T, context: EventContext) => Promise<void> | void;

/** One handler bound to one event type on one queue. */
export interface Subscription<T = unknown> {
  readonly contract: EventContract<T>;
  readonly handler: Handler<T>;
  readonly queue: string;
  readonly bindingKeys: readonly string[];
  readonly retry: RetryPolicy;
  readonly timeoutMs: number;
}

export interface ConsumerOptions {
  readonly prefetch: number;
  readonly queueType: QueueType;
  readonly deliveryLimit: number;
  readonly limits: InputLimits;
  readonly connectTimeoutMs: number;
  readonly logger: Logger;
  readonly middleware: readonly Middleware[];
}

const SETTLE_PAUSE_MS = 1_000;
const REOPEN_PAUSE_MS = 1_000;
const STORED = ["contentType", "contentEncoding", "messageId", "type", "timestamp", "appId", "correlationId"] as const;

function text(value: unknown): string {
  return Buffer.isBuffer(value) ? value.toString("utf8") : String(value);
}

/** Where the event was first published: a retry arrives through the delay machinery (a replay through the default exchange) and names it in headers. */
function origin(fields: amqp.ConsumeMessageFields, headers: Readonly<Record<string, unknown>>): [string, string] {
  if (fields.exchange === "" || fields.exchange.startsWith(DELAY_PREFIX)) {
    const exchange = headers[ORIGINAL_EXCHANGE_HEADER];
    const routingKey = headers[ORIGINAL_ROUTING_KEY_HEADER];
    if (exchange !== undefined && exchange !== null && routingKey !== undefined && routingKey !== null) return [text(exchange), text(routingKey)];
  }
  return [fields.exchange, fields.routingKey];
}

/** The subscriptions of one queue, by event type. */
class QueueRoute {
  readonly byType = new Map<string, Subscription>();
  readonly exchanges = new Map<string, Set<string>>();
  constructor(readonly queue: string) {}

  add(subscription: Subscription): void {
    this.byType.set(subscription.contract.type, subscription);
    const keys = this.exchanges.get(subscription.contract.exchange) ?? new Set<string>();
    for (const key of subscription.bindingKeys) keys.add(key);
    this.exchanges.set(subscription.contract.exchange, keys);
  }
}

type Prepared = { subscription: Subscription; context: DeliveryContext } | ParkReason;

export class Consumer {
  private channel: amqp.Channel | undefined;
  private readonly routes = new Map<string, QueueRoute>();
  private readonly consuming = new Map<string, string>();
  private readonly inFlight = new Set<Promise<void>>();
  private started = false;
  private acks = new AckWindow();
  private flushScheduled = false;
  /** Handler time limits, checked every 50 ms by one timer. */
  private readonly limits = new Deadlines(50);
  private draining = false;

  constructor(
    private readonly connection: RobustConnection,
    private readonly publisher: Publisher,
    private readonly options: ConsumerOptions,
  ) {}

  /** How many deliveries are being handled right now. */
  get busy(): number {
    return this.inFlight.size;
  }

  /** Declare the queue (once), bind it, and consume it on the current and every later connection. */
  async add(subscription: Subscription): Promise<void> {
    let route = this.routes.get(subscription.queue);
    const fresh = route === undefined;
    route ??= new QueueRoute(subscription.queue);
    route.add(subscription);
    this.routes.set(route.queue, route);
    if (!this.started) {
      this.started = true;
      await this.connection.onConnect((connection) => this.restore(connection));
      await this.connection.ready(this.options.connectTimeoutMs);
      return;
    }
    const connection = await this.connection.ready(this.options.connectTimeoutMs);
    await this.declareRoute(connection, route);
    if (fresh && this.channel !== undefined) await this.consume(this.channel, route);
  }

  /** On every connection: declare everything, open the channel, consume every queue. */
  private async restore(connection: amqp.ChannelModel): Promise<void> {
    for (const route of this.routes.values()) await this.declareRoute(connection, route);
    await this.open(connection);
  }

  /** A channel with the prefetch, consuming every queue; opened again if the broker closes it alone. */
  private async open(connection: amqp.ChannelModel): Promise<void> {
    const channel = await connection.createChannel();
    channel.on("error", (error: Error) => this.options.logger.warn("consume channel error", { error: error.message }));
    channel.on("close", () => {
      if (this.channel !== channel) return;
      this.channel = undefined;
      if (this.draining || this.connection.current !== connection) return; // shutdown, or the reconnect restores it
      // The broker closed the channel, not the connection (say, an ack it did not expect): come back after a pause.
      setTimeout(() => {
        if (this.draining || this.connection.current !== connection || this.channel !== undefined) return;
        this.open(connection).catch((error: unknown) => this.options.logger.error("cannot reopen the consume channel", { error: String(error) }));
      }, REOPEN_PAUSE_MS).unref();
    });
    await channel.prefetch(this.options.prefetch);
    this.acks = new AckWindow();
    this.flushScheduled = false;
    this.channel = channel;
    this.consuming.clear();
    for (const route of this.routes.values()) await this.consume(channel, route);
  }

  private async declareRoute(connection: amqp.ChannelModel, route: QueueRoute): Promise<void> {
    const [main, deadLetters] = queueSpecs(route.queue, this.options.queueType, this.options.deliveryLimit);
    const bindings = [{ source: DELIVER_EXCHANGE, destination: route.queue, routingKey: targetBindingKey(route.queue), toExchange: false }];
    for (const [exchange, keys] of route.exchanges) {
      for (const key of keys) bindings.push({ source: exchange, destination: route.queue, routingKey: key, toExchange: false });
    }
    await this.publisher.ensureDelays();
    const exchanges = [...route.exchanges.keys()].map(domainExchange);
    try {
      await declare(connection, { exchanges, queues: [main, deadLetters], bindings });
    } catch (error) {
      const legacy = withoutSafetyNet(main);
      if (!(error instanceof TopologyMismatchError) || legacy === undefined) throw error;
      // Differs in more than the safety net (say, the queue type)? Then this reports that difference.
      await declare(connection, { exchanges, queues: [legacy, deadLetters], bindings });
      this.options.logger.warn(
        `queue ${main.name} was declared without a delivery limit (by an older eventbus); it works, but a consumer that crashes on a message would get it again forever. Re-create the queue to add the safety net.`,
      );
    }
  }

  private async consume(channel: amqp.Channel, route: QueueRoute): Promise<void> {
    if (this.draining || this.consuming.has(route.queue)) return;
    const reply = await channel.consume(route.queue, (message) => {
      if (message !== null) this.deliver(channel, route, message);
    });
    this.consuming.set(route.queue, reply.consumerTag);
  }

  private deliver(channel: amqp.Channel, route: QueueRoute, message: amqp.ConsumeMessage): void {
    if (this.draining) {
      this.settle(channel, message, true);
      return;
    }
    this.acks.delivered(message);
    const work = this.handle(channel, route, message).catch((error: unknown) => {
      // Not the handler's failure (that is retried or parked) but ours: give the delivery back.
      this.options.logger.error("cannot handle a delivery; handing it back", { queue: route.queue, error: String(error) });
      this.settle(channel, message, true);
    });
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  private prepare(route: QueueRoute, message: amqp.ConsumeMessage, headers: Readonly<Record<string, unknown>>): Prepared {
    const limits = this.options.limits;
    const tooBig = checkRaw(message.content, limits);
    if (tooBig !== undefined) return { code: tooBig.reason, error: tooBig.message, errorType: tooBig.name };
    try {
      const contentType: unknown = message.properties.contentType;
      const envelope = parseEnvelope(headers, typeof contentType === "string" ? contentType : undefined, message.content, limits);
      const type = envelope.attributes.type;
      const subscription = route.byType.get(type);
      if (subscription === undefined) {
        const known = [...route.byType.keys()].sort().join(", ");
        return { code: "unsupported_event_type", error: `event type '${type}' has no handler on queue ${route.queue} (handles: ${known})`, errorType: "ContractError" };
      }
      const event = subscription.contract.decode(envelope.data, limits);
      const [exchange, routingKey] = origin(message.fields, headers);
      const context = new DeliveryContext(envelope.attributes, headers, {
        queue: route.queue, exchange, routingKey, attempt: attemptOf(headers), redelivered: message.fields.redelivered,
      }, event);
      return { subscription, context };
    } catch (error) {
      if (error instanceof EnvelopeError || error instanceof EventValidationError) {
        return { code: error.reason, error: error.message, errorType: error.name };
      }
      throw error;
    }
  }

  private async handle(channel: amqp.Channel, route: QueueRoute, message: amqp.ConsumeMessage): Promise<void> {
    const headers: Readonly<Record<string, unknown>> = message.properties.headers ?? {};
    const prepared = this.prepare(route, message, headers);
    if (!("subscription" in prepared)) {
      this.options.logger.warn("parking a delivery", { queue: route.queue, reason: prepared.code, error: prepared.error });
      await this.park(channel, route.queue, message, headers, prepared, 1);
      return;
    }
    const { subscription, context } = prepared;
    try {
      await this.run(subscription, context);
    } catch (error) {
      const decision = subscription.retry.decide(error, context.attempt);
      if (isRetry(decision)) {
        this.options.logger.warn("handler failed; retrying", { type: context.type, id: context.id, attempt: context.attempt, delayMs: Math.round(decision.delayMs), error: String(error) });
        const ticks = delayTicks(decision.delayMs);
        const copyHeaders = retryHeaders(headers, failureReason(error), { exchange: context.exchange, routingKey: context.routingKey, queue: route.queue, attempt: decision.attempt }, ticks * TICK_MS);
        await this.publisher.ensureDelays();
        const copy = this.publisher.delayed(this.copyOf(message, copyHeaders, "retry"), ticks, route.queue);
        await this.republishThenAck(channel, message, copy, `schedule a retry on ${route.queue}`);
      } else {
        this.options.logger.warn("handler failed; parking", { type: context.type, id: context.id, attempt: context.attempt, reason: decision.code, error: String(error) });
        await this.park(channel, route.queue, message, headers, decision, context.attempt);
      }
      return;
    }
    this.settle(channel, message);
  }

  /** Middleware around the handler, the whole chain under the subscription's time limit. */
  private run(subscription: Subscription, context: DeliveryContext): Promise<void> {
    const middleware = this.options.middleware;
    const call = (index: number): Promise<void> => {
      try {
        if (index === middleware.length) return Promise.resolve(subscription.handler(context.event, context));
        return middleware[index](context, () => call(index + 1));
      } catch (error) {
        return Promise.reject(error); // a handler that threw before its first await
      }
    };
    const running = call(0);
    return new Promise<void>((resolve, reject) => {
      const limit: Deadline = {
        at: Date.now() + subscription.timeoutMs,
        expire: () => {
          const error = new HandlerTimeoutError(subscription.timeoutMs, context.type, context.id);
          context.abort(error);
          reject(error);
        },
      };
      this.limits.watch(limit);
      running.then(
        () => {
          this.limits.forget(limit);
          resolve();
        },
        (error: unknown) => {
          this.limits.forget(limit);
          reject(error);
        },
      );
    });
  }

  private copyOf(message: amqp.ConsumeMessage, headers: Record<string, unknown>, label: string): OutgoingMessage {
    const properties: amqp.Options.Publish = { mandatory: true, deliveryMode: 2, headers };
    const target = properties as Record<string, unknown>;
    const source = message.properties as unknown as Record<string, unknown>;
    for (const name of STORED) if (source[name] !== undefined && source[name] !== null) target[name] = source[name];
    return { exchange: "", routingKey: "", body: message.content, properties, label };
  }

  private async park(channel: amqp.Channel, queue: string, message: amqp.ConsumeMessage, headers: Readonly<Record<string, unknown>>, reason: ParkReason, attempt: number): Promise<void> {
    const [exchange, routingKey] = origin(message.fields, headers);
    const copy = this.copyOf(message, parkHeaders(headers, reason, { exchange, routingKey, queue, attempt }), "parked message");
    await this.republishThenAck(channel, message, { ...copy, routingKey: deadLetterQueueName(queue) }, `park a delivery from ${queue}`);
  }

  private async republishThenAck(channel: amqp.Channel, message: amqp.ConsumeMessage, copy: OutgoingMessage, what: string): Promise<void> {
    try {
      await this.publisher.send(copy);
    } catch (error) {
      this.options.logger.error(`could not ${what}; handing the delivery back to the queue`, { error: String(error) });
      await new Promise((resolve) => setTimeout(resolve, SETTLE_PAUSE_MS));
      this.settle(channel, message, true);
      return;
    }
    this.settle(channel, message);
  }

  /**
   * Ack (or nack with requeue) on the delivery's own channel; a closed one means the broker already
   * put it back. An ack is only noted here and sent with the others of this turn (`flush`).
   */
  private settle(channel: amqp.Channel, message: amqp.ConsumeMessage, requeue?: boolean): void {
    if (channel !== this.channel) return;
    if (requeue === undefined) {
      this.acks.processed(message);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush(channel));
      }
      return;
    }
    this.acks.forget(message);
    try {
      channel.nack(message, false, requeue);
    } catch (error) {
      this.options.logger.debug("could not settle a delivery; the broker redelivers it", { error: String(error) });
    }
  }

  private flush(channel: amqp.Channel): void {
    this.flushScheduled = false;
    if (channel !== this.channel || !this.acks.pending) return;
    const frames = this.acks.take();
    try {
      if (frames.upTo !== undefined) channel.ack(frames.upTo, frames.multiple);
      for (const message of frames.single) channel.ack(message);
    } catch (error) {
      this.options.logger.debug("could not ack; the broker redelivers", { error: String(error) });
    }
  }

  /** Stop taking deliveries, give in-flight handlers `graceMs`, then close the channel (the broker requeues the rest). */
  async stop(graceMs: number): Promise<void> {
    this.draining = true;
    const channel = this.channel;
    if (channel !== undefined) {
      for (const tag of this.consuming.values()) await channel.cancel(tag).catch(() => undefined);
    }
    this.consuming.clear();
    if (this.inFlight.size > 0) {
      this.options.logger.info("waiting for handlers to finish", { count: this.inFlight.size, graceMs });
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
      await Promise.race([Promise.allSettled([...this.inFlight]), grace]);
      clearTimeout(timer);
      if (this.inFlight.size > 0) this.options.logger.warn("handlers did not finish in time; their deliveries go back to the queue", { count: this.inFlight.size });
    }
    if (channel !== undefined) this.flush(channel); // processed work is acked, never requeued
    this.channel = undefined;
    if (channel !== undefined) await channel.close().catch(() => undefined);
  }
}
