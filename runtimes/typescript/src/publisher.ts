/**
 * Confirmed, mandatory, persistent publishing on a ConfirmChannel: every message is tracked by its
 * delivery tag (amqplib calls one callback per tag, `multiple` acks included), up to `window`
 * unconfirmed at a time. Outcomes are errors the caller sees, as in the Python SDK:
 *
 * - returned by the broker (mandatory, no queue bound) → UnroutableError naming exchange and key;
 * - nacked → PublishNackedError;
 * - no confirm within `confirmTimeoutMs` → PublishTimeoutError (a confirm that arrived has already
 *   settled the message, so it is never reported as a timeout);
 * - the connection dropped before the confirm → published again on the next connection for up to
 *   `reconnectWindowMs` (at least once: consumers drop duplicates by event id), then an error.
 */
import type amqp from "amqplib";

import { RobustConnection } from "./connection.js";
import { type Deadline, Deadlines } from "./deadlines.js";
import { declare, domainExchange } from "./declare.js";
import { delayRoute, delayTopology, DELIVER_EXCHANGE, landingQueue, targetBindingKey } from "./delay.js";
import { PublishError, PublishNackedError, PublishTimeoutError, UnroutableError } from "./errors.js";
import type { Logger } from "./logger.js";

/** RabbitMQ's direct reply-to pseudo-queue (docs/wire-format.md, Request-reply). */
export const DIRECT_REPLY_TO = "amq.rabbitmq.reply-to";

export interface OutgoingMessage {
  readonly exchange: string;
  readonly routingKey: string;
  readonly body: Buffer;
  /** AMQP properties, `mandatory: true` included: a message no queue takes must come back as an error. */
  readonly properties: amqp.Options.Publish;
  /** For error messages: what this is (an event type, "parked message", ...). */
  readonly label: string;
}

export interface PublisherOptions {
  readonly confirmTimeoutMs: number;
  readonly window: number;
  readonly reconnectWindowMs: number;
  readonly logger: Logger;
}

/** The channel was lost with the message unconfirmed: it may or may not be stored; send again. */
class LostConfirm extends Error {}

interface Live {
  readonly channel: amqp.ConfirmChannel;
  readonly returned: Map<string, number>;
  /** Why the broker closed the channel, when it did (say, NOT_FOUND for a missing exchange). */
  failure?: string;
  /** Consuming direct reply-to on this channel (requests), once asked to. */
  listening?: Promise<void>;
}

export class Publisher {
  private live: Live | undefined;
  private opening: Promise<Live> | undefined;
  private readonly declared = new Set<string>();
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly deadlines: Deadlines;
  private replyHandler: ((message: amqp.ConsumeMessage) => void) | undefined;

  constructor(
    private readonly connection: RobustConnection,
    private readonly options: PublisherOptions,
  ) {
    this.deadlines = new Deadlines(Math.max(10, Math.min(1_000, options.confirmTimeoutMs / 4)));
  }

  /** Open the confirm channel on every (re)connection. */
  async start(): Promise<void> {
    await this.connection.onConnect(async (connection) => {
      this.declared.clear(); // a new broker may have lost what the old one had
      await this.open(connection);
    });
  }

  private async open(connection: amqp.ChannelModel): Promise<Live> {
    const channel = await connection.createConfirmChannel();
    const live: Live = { channel, returned: new Map() };
    channel.on("error", (error: Error) => {
      // A channel-level refusal is final; a connection that went away is worth another try.
      if (error.message.startsWith("Channel closed by server")) live.failure = error.message;
      this.options.logger.debug("publish channel error", { error: error.message });
    });
    channel.on("close", () => {
      if (this.live === live) this.live = undefined;
    });
    // The broker sends basic.return before the basic.ack of the same message on this channel.
    channel.on("return", (message: amqp.Message) => {
      const id = String(message.properties.messageId ?? "");
      live.returned.set(id, (live.returned.get(id) ?? 0) + 1);
    });
    if (this.replyHandler !== undefined) await this.listen(live); // before any request goes out on it
    this.live = live;
    return live;
  }

  /** Hand every reply that reaches the publishing channel (direct reply-to) to `handler`. */
  onReplies(handler: (message: amqp.ConsumeMessage) => void): void {
    this.replyHandler = handler;
  }

  /** Make sure the publishing channel consumes direct reply-to (no-ack), as a request's publish needs. */
  async listenForReplies(): Promise<void> {
    await this.listen(this.live ?? (await this.channel()));
  }

  private listen(live: Live): Promise<void> {
    live.listening ??= live.channel
      .consume(DIRECT_REPLY_TO, (message) => {
        if (message !== null) this.replyHandler?.(message);
      }, { noAck: true })
      .then(() => undefined);
    return live.listening;
  }

  /** The confirm channel; a new one when the broker closed the last on a live connection. */
  private async channel(): Promise<Live> {
    if (this.live !== undefined) return this.live;
    const connection = await this.connection.ready(this.options.reconnectWindowMs);
    return this.live ?? (this.opening ??= this.open(connection).finally(() => (this.opening = undefined)));
  }

  /** Declare `what` once per connection, on a throwaway channel. */
  async ensure(key: string, what: Parameters<typeof declare>[1]): Promise<void> {
    if (this.declared.has(key)) return;
    await declare(await this.connection.ready(this.options.reconnectWindowMs), what);
    this.declared.add(key);
  }

  async ensureExchange(name: string): Promise<void> {
    if (name !== "") await this.ensure(`exchange:${name}`, { exchanges: [domainExchange(name)] });
  }

  async ensureDelays(): Promise<void> {
    await this.ensure(DELIVER_EXCHANGE, delayTopology());
  }

  /** The landing queue that hands delayed events to `exchange` with `routingKey`; its name. */
  async ensureLanding(exchange: string, routingKey: string): Promise<string> {
    const landing = landingQueue(exchange, routingKey);
    await this.ensureExchange(exchange);
    await this.ensureDelays();
    await this.ensure(`landing:${landing.name}`, {
      queues: [landing],
      bindings: [{ source: DELIVER_EXCHANGE, destination: landing.name, routingKey: targetBindingKey(landing.name), toExchange: false }],
    });
    return landing.name;
  }

  /** The same message, routed through the delay queues so that queue `target` gets it after `ticks`. */
  delayed(message: OutgoingMessage, ticks: number, target: string): OutgoingMessage {
    const route = delayRoute(ticks, target);
    return { ...message, exchange: route.exchange, routingKey: route.routingKey };
  }

  /** Publish and wait for the confirm; a PublishError otherwise. */
  async send(message: OutgoingMessage): Promise<void> {
    const wait = this.slot();
    if (wait !== undefined) await wait;
    return this.holding(message);
  }

  /**
   * Publish every message with up to `window` unconfirmed; one outcome each (undefined: confirmed).
   * Slots are taken in order, so a large batch streams out as confirms come back.
   */
  async sendMany(messages: readonly OutgoingMessage[]): Promise<(PublishError | undefined)[]> {
    const outcomes: (PublishError | undefined)[] = new Array<PublishError | undefined>(messages.length);
    const running: Promise<void>[] = [];
    for (let index = 0; index < messages.length; index++) {
      const wait = this.slot();
      if (wait !== undefined) await wait;
      const message = messages[index];
      running.push(
        this.holding(message).then(
          () => undefined,
          (error: unknown) => {
            outcomes[index] = error instanceof PublishError ? error : new PublishError(String(error), message.properties.type, idOf(message));
          },
        ),
      );
    }
    await Promise.all(running);
    return outcomes;
  }

  /** A free slot at once (undefined), or a promise of one. */
  private slot(): Promise<void> | undefined {
    if (this.inFlight < this.options.window) {
      this.inFlight++;
      return undefined;
    }
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Hand the slot to the next waiter, or free it. */
  private release(): void {
    const next = this.waiting.shift();
    if (next !== undefined) next();
    else this.inFlight--;
  }

  /** Publish `message` while holding a slot (released at the end), again after a lost confirm. */
  private async holding(message: OutgoingMessage): Promise<void> {
    const deadline = Date.now() + this.options.reconnectWindowMs;
    try {
      for (;;) {
        let live: Live;
        try {
          live = this.live ?? (await this.channel());
        } catch (error) {
          throw new PublishError(`${message.label} ${idOf(message)} not published: ${String(error)}`, message.properties.type, idOf(message));
        }
        try {
          await this.confirm(live, message);
          return;
        } catch (error) {
          if (!(error instanceof LostConfirm)) throw error;
          if (Date.now() >= deadline) {
            throw new PublishError(`${message.label} ${idOf(message)}: the connection was lost before the broker confirmed it, and did not come back within ${this.options.reconnectWindowMs} ms`, message.properties.type, idOf(message));
          }
          this.options.logger.warn("confirm lost with the connection; publishing again", { id: idOf(message) });
        }
      }
    } finally {
      this.release();
    }
  }

  private confirm(live: Live, message: OutgoingMessage): Promise<void> {
    const { exchange, routingKey, label } = message;
    const id = idOf(message);
    const type = message.properties.type;
    return new Promise<void>((resolve, reject) => {
      const entry: Deadline = {
        at: Date.now() + this.options.confirmTimeoutMs,
        expire: () => reject(new PublishTimeoutError(`no confirm for ${label} ${id} within ${this.options.confirmTimeoutMs} ms; it may or may not be stored`, type, id)),
      };
      const settle = (error: unknown): void => {
        this.deadlines.forget(entry); // a confirm that arrived settles the message: never a timeout after this
        const returns = live.returned.get(id);
        if (returns !== undefined) {
          if (returns > 1) live.returned.set(id, returns - 1);
          else live.returned.delete(id);
        }
        if (error !== null && error !== undefined) {
          const text = error instanceof Error ? error.message : JSON.stringify(error);
          if (text === "channel closed" && live.failure === undefined) reject(new LostConfirm(text));
          else if (text === "channel closed") reject(new PublishError(`${label} ${id} not published: ${live.failure}`, type, id));
          else reject(new PublishNackedError(`broker refused ${label} ${id}: ${text}`, type, id));
        } else if (returns !== undefined) {
          reject(new UnroutableError(`${label} ${id} is unroutable: no queue is bound to exchange '${exchange}' with routing key '${routingKey}'`, type, id));
        } else resolve();
      };
      try {
        live.channel.publish(exchange, routingKey, message.body, message.properties, settle);
      } catch {
        reject(new LostConfirm("channel closed")); // the channel closed under us: nothing was sent
        return;
      }
      this.deadlines.watch(entry);
    });
  }
}

function idOf(message: OutgoingMessage): string {
  return typeof message.properties.messageId === "string" ? message.properties.messageId : "";
}
