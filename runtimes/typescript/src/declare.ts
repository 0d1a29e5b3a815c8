/**
 * Declarations on a throwaway channel: RabbitMQ closes the channel that made a refused declaration,
 * so a mismatch never takes the publisher's or a consumer's channel down with it, and a
 * PRECONDITION_FAILED becomes a TopologyMismatchError that names the argument and both values.
 */
import type amqp from "amqplib";

import type { Binding, DelayTopology, ExchangeSpec } from "./delay.js";
import { TopologyError } from "./errors.js";
import { describeMismatch, type QueueSpec } from "./topology.js";

export interface Declarations {
  readonly exchanges?: readonly ExchangeSpec[];
  readonly queues?: readonly QueueSpec[];
  readonly bindings?: readonly Binding[];
}

function refusal(error: unknown): TopologyError {
  const text = error instanceof Error ? error.message : String(error);
  if (text.includes("PRECONDITION") || text.includes("406")) return describeMismatch(text) ?? new TopologyError(text);
  return new TopologyError(`the broker refused a declaration: ${text}`);
}

/** Declare exchanges, then queues, then bindings; every one idempotent. */
export async function declare(connection: amqp.ChannelModel, what: Declarations | DelayTopology): Promise<void> {
  const channel = await connection.createChannel();
  channel.on("error", () => undefined); // the rejected call reports it
  try {
    for (const exchange of what.exchanges ?? []) {
      await channel.assertExchange(exchange.name, exchange.type, { durable: true, arguments: exchange.arguments });
    }
    for (const queue of what.queues ?? []) {
      await channel.assertQueue(queue.name, { durable: true, arguments: queue.arguments });
    }
    for (const binding of what.bindings ?? []) {
      if (binding.toExchange) await channel.bindExchange(binding.destination, binding.source, binding.routingKey);
      else await channel.bindQueue(binding.destination, binding.source, binding.routingKey);
    }
  } catch (error) {
    throw refusal(error);
  } finally {
    await channel.close().catch(() => undefined);
  }
}

/** A durable topic exchange per domain, as every eventbus declares it. */
export function domainExchange(name: string): ExchangeSpec {
  return { name, type: "topic", arguments: {} };
}
