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
import { declare, domainExchange } from "./declare.js";
import { delayRoute, delayTopology, DELIVER_EXCHANGE, landingQueue, targetBindingKey } from "./delay.js";
import { PublishError, PublishNackedError, PublishTimeoutError, UnroutableError } from "./errors.js";
import type { Logger } from "./logger.js";

export interface OutgoingMessage {
  readonly exchange: string;
  readonly routingKey: string;
  readonly body: Buffer;
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
}

export class Publisher {
  private live: Live | undefined;
  private opening: Promise<Live> | undefined;
  private readonly declared = new Set<string>();
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly connection: RobustConnection,
    private readonly options: PublisherOptions,
  ) {}

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
    this.live = live;
    return live;
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
    const deadline = Date.now() + this.options.reconnectWindowMs;
    for (;;) {
      try {
        await this.attempt(message);
        return;
      } catch (error) {
        if (!(error instanceof LostConfirm)) throw error;
        if (Date.now() >= deadline) {
          throw new PublishError(`${message.label} ${idOf(message)}: the connection was lost before the broker confirmed it, and did not come back within ${this.options.reconnectWindowMs} ms`, message.properties.type, idOf(message));
        }
        this.options.logger.warn("confirm lost with the connection; publishing again", { id: idOf(message) });
      }
    }
  }

  /** Publish every message with up to `window` unconfirmed; one outcome each (undefined: confirmed). */
  async sendMany(messages: readonly OutgoingMessage[]): Promise<(PublishError | undefined)[]> {
    return Promise.all(
      messages.map((message) =>
        this.send(message).then(
          () => undefined,
          (error: unknown) => (error instanceof PublishError ? error : new PublishError(String(error), message.properties.type, idOf(message))),
        ),
      ),
    );
  }

  private async slot(): Promise<void> {
    while (this.inFlight >= this.options.window) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.inFlight++;
  }

  private release(): void {
    this.inFlight--;
    this.waiting.shift()?.();
  }

  private async attempt(message: OutgoingMessage): Promise<void> {
    await this.slot();
    try {
      let live: Live;
      try {
        live = await this.channel();
      } catch (error) {
        throw new PublishError(`${message.label} ${idOf(message)} not published: ${String(error)}`, message.properties.type, idOf(message));
      }
      await this.confirm(live, message);
    } finally {
      this.release();
    }
  }

  private confirm(live: Live, message: OutgoingMessage): Promise<void> {
    const { exchange, routingKey, label } = message;
    const id = idOf(message);
    const type = message.properties.type;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new PublishTimeoutError(`no confirm for ${label} ${id} within ${this.options.confirmTimeoutMs} ms; it may or may not be stored`, type, id));
      }, this.options.confirmTimeoutMs);
      const settle = (error: unknown): void => {
        clearTimeout(timer);
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
        live.channel.publish(exchange, routingKey, message.body, { ...message.properties, mandatory: true }, settle);
      } catch {
        clearTimeout(timer); // the channel closed under us: nothing was sent
        reject(new LostConfirm("channel closed"));
      }
    });
  }
}

function idOf(message: OutgoingMessage): string {
  return typeof message.properties.messageId === "string" ? message.properties.messageId : "";
}
