/** The part of a channel the batcher uses: a (multiple) acknowledgement by delivery tag. */
export interface Acknowledger {
  ack(message: { fields: { deliveryTag: number } }, allUpTo?: boolean): void;
}

/**
 * Coalesces acknowledgements. Handlers finish out of order, so a delivery is acknowledged only once
 * every delivery before it on the channel is settled too; then one `basic.ack` with `multiple` covers
 * the whole settled prefix, sent once per event-loop turn. With a prefetch of hundreds this turns
 * hundreds of ack frames (and broker work) into a few, without ever acknowledging a message whose
 * handling has not finished.
 */
export class AckBatcher {
  readonly #channel: Acknowledger;
  readonly #outstanding: number[] = [];
  readonly #settled = new Set<number>();
  /** Settled without an ack (nacked individually): covered by a later multiple-ack harmlessly, never acked alone. */
  readonly #withoutAck = new Set<number>();
  #ackUpTo = 0;
  #isFlushScheduled = false;
  #isClosed = false;

  constructor(channel: Acknowledger) {
    this.#channel = channel;
  }

  /** Records a delivery, in the order the channel delivered them. */
  delivered(deliveryTag: number): void {
    this.#outstanding.push(deliveryTag);
  }

  /** The delivery may be acknowledged (its handling finished, or its copy was confirmed). */
  ack(deliveryTag: number): void {
    this.#settle(deliveryTag);
  }

  /** The delivery was settled another way (nacked): it no longer holds back the ones after it. */
  settledWithoutAck(deliveryTag: number): void {
    this.#withoutAck.add(deliveryTag);
    this.#settle(deliveryTag);
  }

  /** Sends what can be acknowledged now. */
  flush(): void {
    this.#isFlushScheduled = false;
    if (this.#isClosed || this.#ackUpTo === 0) return;
    const upTo = this.#ackUpTo;
    this.#ackUpTo = 0;
    try {
      this.#channel.ack({ fields: { deliveryTag: upTo } }, true);
    } catch {
      // The channel closed: the broker redelivers whatever was not acknowledged.
      this.#isClosed = true;
    }
  }

  /** Stops acknowledging (the channel is gone: the broker redelivers what was not acknowledged). */
  close(): void {
    this.#isClosed = true;
  }

  #settle(deliveryTag: number): void {
    if (this.#isClosed) return;
    this.#settled.add(deliveryTag);
    let advanced = false;
    while (this.#outstanding.length > 0 && this.#settled.has(this.#outstanding[0] as number)) {
      const tag = this.#outstanding.shift() as number;
      this.#settled.delete(tag);
      if (this.#withoutAck.delete(tag)) {
        // A nacked tag must not be the one a multiple-ack names; acks before it go out first.
        this.flush();
        continue;
      }
      this.#ackUpTo = tag;
      advanced = true;
    }
    if (advanced && !this.#isFlushScheduled) {
      this.#isFlushScheduled = true;
      setImmediate(() => this.flush());
    }
  }
}
