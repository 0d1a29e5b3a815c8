/**
 * One event as the message that goes on the wire (binary-mode CloudEvent, persistent, JSON body),
 * with no I/O: what replies, workflow steps and reports are made of. The body must already be
 * validated (`contract.encode`, or `violations` checked) by the caller.
 */
import { randomUUID } from "node:crypto";

import type amqp from "amqplib";

import { buildHeaders, formatTime, JSON_CONTENT_TYPE } from "./envelope.js";
import type { OutgoingMessage } from "./publisher.js";

/** What a message says about itself: the CloudEvents type, exchange, routing key and schema id. */
export interface EventKind {
  readonly type: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly schemaId?: string;
}

export interface WrapOptions {
  readonly source: string;
  readonly id?: string;
  readonly subject?: string;
  /** More headers, written before the CloudEvents ones (eventbus-workflow-*, eventbus-reply-status). */
  readonly headers?: Readonly<Record<string, unknown>>;
  readonly mandatory?: boolean;
}

/** `body` (already encoded and valid) as an event of `kind`. */
export function wrapEncoded(kind: EventKind, body: Buffer, options: WrapOptions): OutgoingMessage {
  const id = options.id ?? randomUUID();
  const now = new Date();
  const headers: Record<string, unknown> = {
    ...options.headers,
    ...buildHeaders({ id, source: options.source, type: kind.type, time: formatTime(now), subject: options.subject, dataschema: kind.schemaId }),
  };
  const properties: amqp.Options.Publish = {
    mandatory: options.mandatory ?? true,
    contentType: JSON_CONTENT_TYPE,
    deliveryMode: 2,
    messageId: id,
    type: kind.type,
    timestamp: Math.floor(now.getTime() / 1000),
    appId: options.source,
    headers,
  };
  return { exchange: kind.exchange, routingKey: kind.routingKey, body, properties, label: kind.type };
}
