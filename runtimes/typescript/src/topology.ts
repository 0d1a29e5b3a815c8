/**
 * Names and arguments of everything the bus declares, with no I/O, identical to the Python SDK's
 * (eventbus/_topology.py) so a Node replica declares exactly what a Python or Go replica of the
 * same service does and nobody meets PRECONDITION_FAILED:
 *
 *   exchange      <domain>                  durable topic exchange, routing key = event type
 *   queue         <service>.<event type>    quorum (default) or classic, durable; quorum queues carry
 *                                           x-delivery-limit and dead-letter to the DLQ (safety net)
 *   dead letters  <queue>.dlq               same type as the queue; parked messages wait here
 *   delays        eventbus.delay.v2.*       shared by all services, see delay.ts
 */
import { TopologyMismatchError } from "./errors.js";

export type QueueType = "quorum" | "classic";

/** A durable queue and the broker arguments it is declared with. */
export interface QueueSpec {
  readonly name: string;
  readonly arguments: Readonly<Record<string, unknown>>;
}

export const DEFAULT_DELIVERY_LIMIT = 20;

export function consumerQueueName(service: string, eventType: string): string {
  return `${service}.${eventType}`;
}

export function deadLetterQueueName(queue: string): string {
  return `${queue}.dlq`;
}

/**
 * The consumer queue and its dead-letter queue. A quorum queue also gets a broker-side safety
 * net: after `deliveryLimit` deliveries never acked (a consumer that crashes on a message before
 * it can count attempts) the broker dead-letters it to the DLQ through the default exchange.
 * `singleActiveConsumer` adds `x-single-active-consumer`: the broker delivers to one consumer of the
 * queue at a time (the next when it goes), so deliveries keep the queue's order across replicas.
 */
export function queueSpecs(
  queue: string,
  queueType: QueueType = "quorum",
  deliveryLimit: number = DEFAULT_DELIVERY_LIMIT,
  options: { readonly singleActiveConsumer?: boolean } = {},
): [QueueSpec, QueueSpec] {
  const deadLetters = deadLetterQueueName(queue);
  const main: Record<string, unknown> = { "x-queue-type": queueType };
  if (options.singleActiveConsumer === true) main["x-single-active-consumer"] = true;
  if (queueType === "quorum" && deliveryLimit > 0) {
    main["x-delivery-limit"] = deliveryLimit;
    main["x-dead-letter-exchange"] = "";
    main["x-dead-letter-routing-key"] = deadLetters;
  }
  return [
    { name: queue, arguments: main },
    { name: deadLetters, arguments: { "x-queue-type": queueType } },
  ];
}

/** The arguments of the broker-side safety net, which queues declared by older eventbus versions lack. */
export const SAFETY_NET_ARGUMENTS = ["x-delivery-limit", "x-dead-letter-exchange", "x-dead-letter-routing-key"] as const;

/**
 * The spec an older eventbus declared the queue with (no delivery limit), or undefined if the same.
 * RabbitMQ cannot add arguments to an existing queue; like the Python SDK, the consumer then uses the
 * queue as it is and warns, instead of failing.
 */
export function withoutSafetyNet(spec: QueueSpec): QueueSpec | undefined {
  if (!SAFETY_NET_ARGUMENTS.some((name) => name in spec.arguments)) return undefined;
  const kept = Object.fromEntries(Object.entries(spec.arguments).filter(([name]) => !(SAFETY_NET_ARGUMENTS as readonly string[]).includes(name)));
  return { name: spec.name, arguments: kept };
}

const INEQUIVALENT = /inequivalent arg '([^']+)' for (queue|exchange) '([^']+)'/;

/**
 * Turn RabbitMQ's PRECONDITION_FAILED text into a TopologyMismatchError naming the argument, the
 * value we sent and the value in place, e.g. "inequivalent arg 'x-queue-type' for queue 'a.b' in
 * vhost '/': received the value 'quorum' of type 'longstr' but current is none".
 */
export function describeMismatch(brokerText: string): TopologyMismatchError | undefined {
  const match = INEQUIVALENT.exec(brokerText);
  if (match === null) {
    if (!brokerText.includes("inequivalent arg") && !brokerText.includes("durable")) return undefined;
    return new TopologyMismatchError("entity", brokerText);
  }
  let detail = brokerText.slice(match.index);
  const dash = detail.indexOf(" - ");
  if (dash !== -1) detail = detail.slice(dash + 3);
  detail = detail.replace(/['")\s]+$/, "");
  return new TopologyMismatchError(`${match[2]} '${match[3]}'`, detail);
}
