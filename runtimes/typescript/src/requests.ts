/**
 * The requesting side of request-reply (docs/wire-format.md, "Request-reply"), as in the Python SDK
 * (eventbus/_requests.py): the request goes out on the bus's publishing channel with `replyTo =
 * amq.rabbitmq.reply-to` and a fresh `correlationId`; that channel consumes the pseudo-queue (no-ack)
 * before the first request, and every reply is matched to its waiting caller by correlation id. No
 * queue is declared for replies, so a request that times out leaves nothing behind on the broker, and
 * a reply that comes too late is dropped here.
 */
import { randomUUID } from "node:crypto";

import type amqp from "amqplib";

import type { EventContract } from "./contract.js";
import { ConfigurationError, RequestTimeoutError } from "./errors.js";
import type { InputLimits } from "./limits.js";
import type { Logger } from "./logger.js";
import { DIRECT_REPLY_TO, type OutgoingMessage, type Publisher } from "./publisher.js";
import { readReply } from "./replies.js";

interface Waiter {
  readonly resolve: (reply: amqp.Message) => void;
}

/** The requests of one bus waiting for their replies, by correlation id. */
export class Requests {
  private readonly waiting = new Map<string, Waiter>();
  private listening = false;

  constructor(
    private readonly publisher: Publisher,
    private readonly limits: InputLimits,
    private readonly logger: Logger,
  ) {}

  private onReply(message: amqp.Message): void {
    const correlationId = typeof message.properties.correlationId === "string" ? message.properties.correlationId : "";
    const waiter = this.waiting.get(correlationId);
    if (waiter === undefined) {
      this.logger.debug("dropping a reply nobody waits for: it came too late", { correlationId });
      return;
    }
    this.waiting.delete(correlationId);
    waiter.resolve(message);
  }

  /** Publish `message` (an event, validated) as a request and return the reply's data (see EventBus.request). */
  async request<R>(message: OutgoingMessage, reply: EventContract<R> | undefined, timeoutMs: number): Promise<R | undefined> {
    if (!(timeoutMs > 0)) throw new ConfigurationError(`a request needs a positive timeout, got ${timeoutMs}`);
    if (!this.listening) {
      this.publisher.onReplies((incoming) => this.onReply(incoming));
      this.listening = true;
    }
    const correlationId = randomUUID();
    const type = String(message.properties.type);
    const id = String(message.properties.messageId);
    let timer: NodeJS.Timeout | undefined;
    const answer = new Promise<amqp.Message>((resolve, reject) => {
      this.waiting.set(correlationId, { resolve });
      timer = setTimeout(() => reject(new RequestTimeoutError(timeoutMs, type, id)), timeoutMs);
    });
    answer.catch(() => undefined); // a failed publish below wins; the timeout then has nobody to tell
    try {
      const sent = (async () => {
        await this.publisher.listenForReplies();
        await this.publisher.ensureExchange(message.exchange);
        await this.publisher.send({ ...message, properties: { ...message.properties, replyTo: DIRECT_REPLY_TO, correlationId } });
      })();
      sent.catch(() => undefined); // when the reply came first, a late failure of the publish changes nothing
      await Promise.race([sent, answer]);
      const received = await answer;
      return readReply(received, reply, { type, id }, this.limits);
    } finally {
      clearTimeout(timer);
      this.waiting.delete(correlationId);
    }
  }
}
