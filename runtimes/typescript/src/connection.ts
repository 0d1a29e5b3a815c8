/**
 * One AMQP connection that comes back by itself, the way aio-pika's RobustConnection does: after a
 * broker restart, a network fault or a `close_connection` from the management side, it reconnects
 * with exponential backoff and jitter (to the first broker URL that answers) and runs every setup
 * step registered with `onConnect` again, in order: re-declaring topology, re-opening channels,
 * restoring consumers. Callers that need the connection wait for it with `ready(timeoutMs)`.
 * A setup step that the broker refuses (TopologyError) ends the attempts: it is reported to the
 * waiting caller instead of being retried forever.
 */
import amqp from "amqplib";

import { ConnectionFailedError, TopologyError } from "./errors.js";
import type { Logger } from "./logger.js";

export type Setup = (connection: amqp.ChannelModel) => Promise<void>;

export interface ConnectionOptions {
  readonly urls: readonly string[];
  /** Shown in the management UI: `<service>:publish`, `<service>:consume`. */
  readonly name: string;
  readonly heartbeatS: number;
  readonly connectTimeoutMs: number;
  readonly logger: Logger;
}

const FIRST_BACKOFF_MS = 200;
const MAX_BACKOFF_MS = 5_000;

/** The URL with its password replaced, for messages and logs. */
/** A copy of ``items`` in a random order (Fisher-Yates). */
export function shuffled<T>(items: readonly T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy;
}

export function redactUrl(url: string): string {
  return url.replace(/^(amqps?:\/\/[^:@/]*):[^@/]*@/, "$1:***@");
}

/** `first·2^(n-1)` capped, minus up to half of it at random: reconnecting replicas spread out. */
export function reconnectDelay(failures: number, random: () => number = Math.random): number {
  const base = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** Math.min(20, Math.max(0, failures - 1)));
  return base * (1 - 0.5 * random());
}

/** The URL's own `heartbeat` wins; otherwise ours. */
function withHeartbeat(url: string, seconds: number): string {
  if (/[?&]heartbeat=/.test(url)) return url;
  return `${url}${url.includes("?") ? "&" : "?"}heartbeat=${seconds}`;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());

export class RobustConnection {
  private connection: amqp.ChannelModel | undefined;
  private connecting: Promise<amqp.ChannelModel> | undefined;
  private readonly setups: Setup[] = [];
  private closed = false;
  private lastError: unknown;

  constructor(private readonly options: ConnectionOptions) {}

  /** The connection when it is up, else undefined (never waits). */
  get current(): amqp.ChannelModel | undefined {
    return this.connection;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Run `setup` on every connection from now on, and on the current one at once if there is one. */
  async onConnect(setup: Setup): Promise<void> {
    this.setups.push(setup);
    if (this.connection !== undefined) await setup(this.connection);
  }

  /** The connection, (re)connecting if needed; ConnectionFailedError when none is up within `timeoutMs`. */
  async ready(timeoutMs: number): Promise<amqp.ChannelModel> {
    if (this.connection !== undefined) return this.connection;
    if (this.closed) throw new ConnectionFailedError(`connection ${this.options.name} is closed`);
    this.connecting ??= this.loop();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const urls = this.options.urls.map(redactUrl).join(", ");
        reject(new ConnectionFailedError(`no broker answered at ${urls} within ${timeoutMs} ms: ${String(this.lastError)}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.connecting, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Connect once, trying every URL in a fresh random order (so replicas spread over a cluster's
   * nodes and a reconnect after a node was lost reaches another one, as Python and Go do); setup
   * steps included. Throws the last error. */
  async connectOnce(): Promise<amqp.ChannelModel> {
    let failure: unknown = new ConnectionFailedError("no broker URL given");
    for (const url of shuffled(this.options.urls)) {
      let connection: amqp.ChannelModel | undefined;
      try {
        connection = await amqp.connect(withHeartbeat(url, this.options.heartbeatS), {
          timeout: this.options.connectTimeoutMs,
          clientProperties: { connection_name: this.options.name },
        });
        connection.on("error", (error: Error) => this.options.logger.debug("connection error", { name: this.options.name, error: String(error) }));
        for (const setup of this.setups) await setup(connection);
        return connection;
      } catch (error) {
        failure = error;
        if (connection !== undefined) await connection.close().catch(() => undefined);
      }
    }
    throw failure;
  }

  private async loop(): Promise<amqp.ChannelModel> {
    for (let failures = 0; ; ) {
      if (this.closed) throw new ConnectionFailedError(`connection ${this.options.name} is closed`);
      try {
        const connection = await this.connectOnce();
        if (this.closed) {
          await connection.close().catch(() => undefined);
          throw new ConnectionFailedError(`connection ${this.options.name} is closed`);
        }
        this.connection = connection;
        this.connecting = undefined;
        connection.once("close", () => this.lost(connection));
        if (failures > 0) this.options.logger.info("reconnected", { name: this.options.name, failures });
        return connection;
      } catch (error) {
        if (error instanceof ConnectionFailedError && this.closed) throw error;
        if (error instanceof TopologyError) {
          // A refused declaration does not get better by reconnecting: the caller sees it.
          this.connecting = undefined;
          this.options.logger.error("a declaration was refused", { name: this.options.name, error: error.message });
          throw error;
        }
        this.lastError = error;
        failures += 1;
        const wait = reconnectDelay(failures);
        this.options.logger.warn("connecting failed; trying again", { name: this.options.name, failures, waitMs: Math.round(wait), error: String(error) });
        await sleep(wait);
      }
    }
  }

  private lost(connection: amqp.ChannelModel): void {
    if (this.connection !== connection) return;
    this.connection = undefined;
    if (this.closed) return;
    this.options.logger.warn("connection lost; reconnecting", { name: this.options.name });
    this.connecting ??= this.loop();
    this.connecting.catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    const connection = this.connection;
    this.connection = undefined;
    if (connection !== undefined) await connection.close().catch(() => undefined);
  }
}
