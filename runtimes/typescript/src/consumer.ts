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
import type { JsonValue } from "./json.js";
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
import { errorReply, okReply } from "./replies.js";
import { type HandlerResult, isTaskResult } from "./results.js";
import { failureReason, isRetry, type RetryPolicy } from "./retry.js";
import { type RevocationStore, revocationKeys } from "./revocations.js";
import { advance, type JoinAction, type Slip, StepResultError } from "./slip.js";
import { completedReport, failedReport, readStep, type StepInfo, stepMessages, type WorkflowFailure } from "./steps.js";
import { deadLetterQueueName, queueSpecs, type QueueType, withoutSafetyNet } from "./topology.js";

/**
 * A handler: resolves to nothing, or to its typed result (`result(CONTRACT, data)`), which answers a
 * request and feeds the next step of a workflow.
 */
export type Handler<T> = (event: T, context: EventContext) => Promise<HandlerResult> | HandlerResult;

/** One handler bound to one event type on one queue. */
export interface Subscription<T = unknown> {
  readonly contract: EventContract<T>;
  readonly handler: Handler<T>;
  readonly queue: string;
  readonly bindingKeys: readonly string[];
  readonly retry: RetryPolicy;
  readonly timeoutMs: number;
  /** Declare the queue with `x-single-active-consumer` (one consumer at a time, in queue order). */
  readonly singleActiveConsumer?: boolean;
}

export interface ConsumerOptions {
  readonly prefetch: number;
  readonly queueType: QueueType;
  readonly deliveryLimit: number;
  readonly limits: InputLimits;
  readonly connectTimeoutMs: number;
  readonly logger: Logger;
  readonly middleware: readonly Middleware[];
  /** The CloudEvents source of the replies, steps and reports this consumer publishes. */
  readonly source: string;
  /** Checked before running a workflow step or a delayed delivery; none: no check. */
  readonly revocations?: RevocationStore;
}

const SETTLE_PAUSE_MS = 1_000;
const REOPEN_PAUSE_MS = 1_000;
const STORED = ["contentType", "contentEncoding", "messageId", "type", "timestamp", "appId", "correlationId"] as const;

function text(value: unknown): string {
  return Buffer.isBuffer(value) ? value.toString("utf8") : String(value);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The CloudEvents id of a delivery as far as its headers say (for lookups and reports, before parsing). */
function eventIdOf(message: amqp.ConsumeMessage, headers: Readonly<Record<string, unknown>>): string {
  const id: unknown = headers.cloudEvents_id ?? headers["cloudEvents:id"] ?? headers["ce-id"] ?? headers.ce_id ?? message.properties.messageId;
  return id === undefined || id === null ? "" : text(id);
}

function eventTypeOf(message: amqp.ConsumeMessage, headers: Readonly<Record<string, unknown>>): string {
  const type: unknown = headers.cloudEvents_type ?? headers["cloudEvents:type"] ?? headers["ce-type"] ?? headers.ce_type ?? message.properties.type;
  return type === undefined || type === null ? "" : text(type);
}

/** What a request's reply says about a failure: the error's own type and message, as Python does. */
function errorOf(reason: ParkReason, cause: unknown): [string, string] {
  if (cause instanceof Error) return [reason.errorType, cause.message];
  return [reason.errorType || reason.code, reason.error];
}

/** Where the event was first published: a retry arrives through the delay machinery (a replay through the default exchange) and names it in headers. */
/** A step's result as the JSON input of `advance`: a result's data (checked against its contract), or null. */
function stepInput(value: unknown): JsonValue {
  if (value === undefined || value === null) return null;
  if (!isTaskResult(value)) throw new StepResultError(`a workflow step returned a ${typeof value}; a step returns result(contract, data) or nothing`);
  const problems = value.contract.violations(value.data);
  if (problems.length > 0) throw new StepResultError(`the result breaks ${value.contract.type}: ${problems.slice(0, 5).map((p) => `${p.instancePath}: ${p.message}`).join("; ")}`);
  return value.data as JsonValue;
}

function correlationOf(message: amqp.ConsumeMessage): string | undefined {
  const id: unknown = message.properties.correlationId;
  return typeof id === "string" ? id : undefined;
}

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
  singleActiveConsumer = false;
  constructor(readonly queue: string) {}

  add(subscription: Subscription): void {
    if (subscription.singleActiveConsumer === true) this.singleActiveConsumer = true;
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
    const [main, deadLetters] = queueSpecs(route.queue, this.options.queueType, this.options.deliveryLimit, { singleActiveConsumer: route.singleActiveConsumer });
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
    if (this.options.revocations !== undefined && (await this.revoked(channel, message, headers, this.options.revocations))) return;
    const step = readStep(headers);
    const prepared = this.prepare(route, message, headers);
    if (step?.error !== undefined) {
      this.options.logger.warn("parking a workflow step with a bad slip", { queue: route.queue, error: step.error.message });
      await this.park(channel, route.queue, message, headers, { code: step.error.reason, error: step.error.message, errorType: step.error.name }, 1, step);
      return;
    }
    if (!("subscription" in prepared)) {
      this.options.logger.warn("parking a delivery", { queue: route.queue, reason: prepared.code, error: prepared.error });
      await this.park(channel, route.queue, message, headers, prepared, 1, step);
      return;
    }
    const { subscription, context } = prepared;
    const startedAt = new Date();
    let value: unknown;
    try {
      value = await this.run(subscription, context);
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
        await this.park(channel, route.queue, message, headers, decision, context.attempt, step, error);
      }
      return;
    }
    if (step?.slip !== undefined && !(await this.forward(channel, route.queue, message, headers, step.slip, step, context.type, context.attempt, startedAt, value))) return;
    const replyTo: unknown = message.properties.replyTo;
    if (typeof replyTo === "string" && replyTo !== "") {
      const request = { replyTo, correlationId: correlationOf(message) };
      await this.answer(
        value === undefined || value === null || isTaskResult(value)
          ? okReply(request, value ?? undefined, this.options.source)
          : errorReply(request, "ContractError", `the handler returned a ${typeof value}, not result(contract, data)`),
      );
    }
    this.settle(channel, message); // any other return value of a plain handler is ignored, as before
  }

  /** Whether the delivery is revoked (then acked and dropped here); a store that cannot tell hands it back. */
  private async revoked(channel: amqp.Channel, message: amqp.ConsumeMessage, headers: Readonly<Record<string, unknown>>, store: RevocationStore): Promise<boolean> {
    const keys = revocationKeys(headers, eventIdOf(message, headers));
    if (keys === undefined) return false;
    try {
      if (!(await store.anyExists(keys))) return false;
    } catch (error) {
      this.options.logger.error("cannot ask the revocation store; handing the delivery back to the queue", { error: String(error) });
      await sleep(SETTLE_PAUSE_MS);
      this.settle(channel, message, true);
      return true;
    }
    this.options.logger.info("dropping a revoked delivery", { id: eventIdOf(message, headers), keys });
    this.settle(channel, message);
    return true;
  }

  /**
   * A finished step moves its workflow on: `advance(slip.next, result)` as validated messages and the
   * step_completed report, all confirmed before the ack. A result that does not fit the next step parks
   * this step (`workflow_result_invalid`); a publish that fails hands the delivery back. True: go on.
   */
  private async forward(
    channel: amqp.Channel, queue: string, message: amqp.ConsumeMessage, headers: Readonly<Record<string, unknown>>,
    slip: Slip, step: StepInfo, type: string, attempt: number, startedAt: Date, value: unknown,
  ): Promise<boolean> {
    let batch: OutgoingMessage[];
    try {
      const resultType = isTaskResult(value) ? value.contract.type : null;
      let messages: OutgoingMessage[] = [];
      let join: JoinAction | undefined;
      if (slip.next.length > 0) { // a branch's last step: whatever it returned moves nothing on
        ({ messages, join } = stepMessages(advance(slip.next, stepInput(value), slip.onError), step.workflowId, this.options.source));
      }
      const report = completedReport({ workflowId: step.workflowId, step: step.step, type, attempt, startedAt, resultType, join }, this.options.source);
      batch = [...messages, report];
    } catch (error) {
      if (!(error instanceof StepResultError)) throw error;
      this.options.logger.warn("parking a workflow step whose result does not fit its next step", { workflow: step.workflowId, step: step.step, error: error.message });
      await this.park(channel, queue, message, headers, { code: error.reason, error: error.message, errorType: error.name }, attempt, step, error);
      return false;
    }
    if (!(await this.sendAll(batch))) {
      await sleep(SETTLE_PAUSE_MS);
      this.settle(channel, message, true);
      return false;
    }
    return true;
  }

  /** Declare the exchanges of `batch` and publish it, all confirmed; false (logged) when anything failed. */
  private async sendAll(batch: readonly OutgoingMessage[]): Promise<boolean> {
    try {
      for (const exchange of new Set(batch.map((m) => m.exchange))) await this.publisher.ensureExchange(exchange);
      const failures = (await this.publisher.sendMany(batch)).filter((outcome) => outcome !== undefined);
      if (failures.length === 0) return true;
      this.options.logger.error("could not publish a workflow step's messages; handing the delivery back to the queue", { error: String(failures[0]) });
    } catch (error) {
      this.options.logger.error("could not publish a workflow step's messages; handing the delivery back to the queue", { error: String(error) });
    }
    return false;
  }

  /** Send a request's reply, best effort: a requester that is gone cannot be answered, and a reply is never a reason to redeliver. */
  private async answer(reply: OutgoingMessage): Promise<void> {
    try {
      await this.publisher.send(reply);
    } catch (error) {
      this.options.logger.warn("could not send a reply", { correlationId: reply.properties.correlationId, error: String(error) });
    }
  }

  /** The failed report and `advance(on_error, failure)` of a step parked with `reason` (none when not a step). */
  private failureMessages(step: StepInfo | undefined, message: amqp.ConsumeMessage, headers: Readonly<Record<string, unknown>>, reason: ParkReason, attempt: number, queue: string): OutgoingMessage[] {
    if (step === undefined) return [];
    const failure: WorkflowFailure = { // with Python's defaults (workflows/_runtime.py, after_park)
      workflow_id: step.workflowId,
      step: step.step,
      type: eventTypeOf(message, headers) || "unknown",
      message_id: eventIdOf(message, headers) || "unknown",
      attempt: Math.max(1, attempt),
      reason: reason.code,
      error_type: reason.errorType || "unknown",
      error: reason.error,
      queue: deadLetterQueueName(queue),
      failed_at: new Date().toISOString(),
    };
    const out = [failedReport(failure, this.options.source)];
    const slip: Slip | undefined = step.slip;
    if (slip !== undefined && slip.onError.length > 0) {
      try {
        out.push(...stepMessages(advance(slip.onError, { ...failure }, []), step.workflowId, this.options.source).messages);
      } catch (error) {
        this.options.logger.error("the workflow's on_error step cannot take the failure; only the failed report is sent", { workflow: step.workflowId, error: String(error) });
      }
    }
    return out;
  }

  /** Middleware around the handler, the whole chain under the subscription's time limit. */
  private run(subscription: Subscription, context: DeliveryContext): Promise<HandlerResult> {
    const middleware = this.options.middleware;
    let value: HandlerResult;
    const call = (index: number): Promise<void> => {
      try {
        if (index === middleware.length) {
          return Promise.resolve(subscription.handler(context.event, context)).then((returned) => {
            value = returned;
          });
        }
        return middleware[index](context, () => call(index + 1));
      } catch (error) {
        return Promise.reject(error); // a handler that threw before its first await
      }
    };
    const running = call(0);
    return new Promise<HandlerResult>((resolve, reject) => {
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
          resolve(value);
        },
        (error: unknown) => {
          this.limits.forget(limit);
          reject(error);
        },
      );
    });
  }

  /** A copy of the delivery with `headers`; a retry copy keeps `replyTo` (its last attempt answers), a park copy drops it. */
  private copyOf(message: amqp.ConsumeMessage, headers: Record<string, unknown>, label: string): OutgoingMessage {
    const properties: amqp.Options.Publish = { mandatory: true, deliveryMode: 2, headers };
    const target = properties as Record<string, unknown>;
    const source = message.properties as unknown as Record<string, unknown>;
    for (const name of STORED) if (source[name] !== undefined && source[name] !== null) target[name] = source[name];
    if (label === "retry" && typeof source.replyTo === "string" && source.replyTo !== "") target.replyTo = source.replyTo;
    return { exchange: "", routingKey: "", body: message.content, properties, label };
  }

  /**
   * Park the delivery in `<queue>.dlq`. A workflow step's park copy goes in one confirmed batch with
   * its failed report and its `on_error` steps; a request is answered with an `error` reply once the
   * copy is confirmed. Nothing confirmed: the delivery goes back to the queue.
   */
  private async park(
    channel: amqp.Channel, queue: string, message: amqp.ConsumeMessage, headers: Readonly<Record<string, unknown>>,
    reason: ParkReason, attempt: number, step?: StepInfo, cause?: unknown,
  ): Promise<void> {
    const [exchange, routingKey] = origin(message.fields, headers);
    const copy = this.copyOf(message, parkHeaders(headers, reason, { exchange, routingKey, queue, attempt }), "parked message");
    const parked = { ...copy, routingKey: deadLetterQueueName(queue) };
    const workflow = this.failureMessages(step, message, headers, reason, attempt, queue);
    if (workflow.length === 0) {
      if (!(await this.republish(parked, `park a delivery from ${queue}`))) return this.giveBack(channel, message);
    } else if (!(await this.sendAll([parked, ...workflow]))) {
      return this.giveBack(channel, message);
    }
    const replyTo: unknown = message.properties.replyTo;
    if (typeof replyTo === "string" && replyTo !== "") {
      const [errorType, error] = errorOf(reason, cause);
      await this.answer(errorReply({ replyTo, correlationId: correlationOf(message) }, errorType, error));
    }
    this.settle(channel, message);
  }

  private async republish(copy: OutgoingMessage, what: string): Promise<boolean> {
    try {
      await this.publisher.send(copy);
      return true;
    } catch (error) {
      this.options.logger.error(`could not ${what}; handing the delivery back to the queue`, { error: String(error) });
      return false;
    }
  }

  /** Nack with requeue after a pause: what could not be settled safely runs again. */
  private async giveBack(channel: amqp.Channel, message: amqp.ConsumeMessage): Promise<void> {
    await sleep(SETTLE_PAUSE_MS);
    this.settle(channel, message, true);
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
