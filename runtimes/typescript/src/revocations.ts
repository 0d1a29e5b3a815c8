/**
 * Cancel and revoke at dispatch (docs/wire-format.md, "Cancel and revoke"): `cancel(workflow_id)` and
 * `revoke(event_id)` set `eventbus:revoked:<id>` in the revocation store (Redis). A bus configured with
 * that store (`revocationsUrl`) checks a delivery that carries `eventbus-workflow-id` or
 * `eventbus-deliver-at` with one `EXISTS` of both keys before it runs; a revoked one is acked and
 * dropped. Other deliveries cost no lookup. A store that cannot answer is never read as "not revoked":
 * the delivery goes back to its queue (the consumer nacks it after a pause).
 */
import { createClient } from "redis";

import type { Logger } from "./logger.js";
import { DELIVER_AT_HEADER } from "./parking.js";
import { WORKFLOW_HEADER } from "./slip.js";

export const REVOKED_PREFIX = "eventbus:revoked:";

/** Answers whether any of some keys exists; throws when it cannot tell. */
export interface RevocationStore {
  anyExists(keys: readonly string[]): Promise<boolean>;
  close(): Promise<void>;
}

function text(value: unknown): string | undefined {
  if (Buffer.isBuffer(value)) return value.toString("utf8");
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** The keys to look up for a delivery, or undefined when it needs no lookup (no workflow, not delayed). */
export function revocationKeys(headers: Readonly<Record<string, unknown>>, eventId: string | undefined): string[] | undefined {
  const workflow = text(headers[WORKFLOW_HEADER]);
  if (workflow === undefined && headers[DELIVER_AT_HEADER] === undefined) return undefined;
  const keys: string[] = [];
  if (workflow !== undefined) keys.push(REVOKED_PREFIX + workflow);
  if (eventId !== undefined && eventId !== "") keys.push(REVOKED_PREFIX + eventId);
  return keys.length > 0 ? keys : undefined;
}

/** The revocation store in Redis (npm `redis`): one `EXISTS` per lookup, failing fast while disconnected. */
export class RedisRevocations implements RevocationStore {
  private readonly client;
  private readonly connecting: Promise<unknown>;

  constructor(
    url: string,
    private readonly timeoutMs: number,
    logger: Logger,
  ) {
    this.client = createClient({
      url,
      disableOfflineQueue: true, // a lookup while disconnected fails at once instead of waiting
      socket: { connectTimeout: timeoutMs, reconnectStrategy: (retries: number) => Math.min(5_000, 100 * 2 ** Math.min(retries, 6)) },
    });
    this.client.on("error", (error: unknown) => logger.warn("revocation store error", { error: String(error) }));
    this.connecting = this.client.connect().catch((error: unknown) => logger.warn("revocation store unreachable", { error: String(error) }));
  }

  /** Wait (at most `timeoutMs`) for the first connection, so the first deliveries do not bounce. */
  async ready(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.connecting, new Promise((resolve) => (timer = setTimeout(resolve, this.timeoutMs)))]);
    clearTimeout(timer);
  }

  async anyExists(keys: readonly string[]): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the revocation store did not answer within ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    try {
      const found = await Promise.race([this.client.exists([...keys]), timeout]);
      return Number(found) > 0;
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    try {
      if (this.client.isOpen) await this.client.close();
      else this.client.destroy();
    } catch {
      this.client.destroy();
    }
  }
}
