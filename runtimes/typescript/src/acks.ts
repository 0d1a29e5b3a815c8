/**
 * Acks sent together, as the Python SDK's _acks.py does: deliveries handled in the same turn of the
 * event loop are acked with one `multiple` ack up to the highest tag below which every delivery is
 * done; a delivery done out of order (a slow one still runs before it) is acked on its own, so a
 * slow handler never holds finished work unacked. No I/O here: `take()` says what to send.
 */
import type amqp from "amqplib";

export interface AckFrames {
  /** Ack everything outstanding up to this delivery (`multiple`), when set. */
  readonly upTo?: amqp.ConsumeMessage;
  /** Whether `upTo` covers more than itself (then the ack is sent with `multiple`). */
  readonly multiple: boolean;
  /** Deliveries to ack one by one. */
  readonly single: amqp.ConsumeMessage[];
}

export class AckWindow {
  /** Deliveries not yet settled, in delivery-tag order. */
  private outstanding: amqp.ConsumeMessage[] = [];
  private readonly done = new Set<number>();

  get pending(): boolean {
    return this.done.size > 0;
  }

  delivered(message: amqp.ConsumeMessage): void {
    this.outstanding.push(message);
  }

  /** The handler finished: ack it with the next `take()`. */
  processed(message: amqp.ConsumeMessage): void {
    this.done.add(message.fields.deliveryTag);
  }

  /** Settled otherwise (nacked): no longer outstanding. */
  forget(message: amqp.ConsumeMessage): void {
    const tag = message.fields.deliveryTag;
    this.done.delete(tag);
    this.outstanding = this.outstanding.filter((other) => other.fields.deliveryTag !== tag);
  }

  take(): AckFrames {
    let upTo: amqp.ConsumeMessage | undefined;
    let covered = 0;
    while (this.outstanding.length > 0 && this.done.has(this.outstanding[0].fields.deliveryTag)) {
      upTo = this.outstanding.shift();
      this.done.delete((upTo as amqp.ConsumeMessage).fields.deliveryTag);
      covered++;
    }
    const single: amqp.ConsumeMessage[] = [];
    if (this.done.size > 0) {
      this.outstanding = this.outstanding.filter((message) => {
        if (!this.done.has(message.fields.deliveryTag)) return true;
        single.push(message);
        return false;
      });
      this.done.clear();
    }
    return { upTo, multiple: covered > 1, single };
  }
}
