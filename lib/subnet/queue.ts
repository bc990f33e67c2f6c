// An unbounded single-consumer queue that turns callback events (etcd watch responses, memory
// store changes) into an async pull loop. Unbounded on purpose: the producer is a store that
// cannot be paused, and dropping events would break the event stream's meaning; consumers
// (the reconciler) only coalesce them.

export class AsyncQueue<T> {
  private items: T[] = [];
  private head = 0;
  private wake: (() => void) | undefined;
  private closed = false;

  push(item: T): void {
    if (this.closed) return;
    this.items.push(item);
    this.wake?.();
  }

  close(): void {
    this.closed = true;
    this.wake?.();
  }

  get size(): number {
    return this.items.length - this.head;
  }

  /** The next item; undefined once the queue is closed and drained or the signal aborts. */
  async next(signal: AbortSignal): Promise<T | undefined> {
    for (;;) {
      if (signal.aborted) return undefined;
      if (this.head < this.items.length) {
        const item = this.items[this.head]!;
        this.items[this.head++] = undefined as T; // let it be collected
        if (this.head > 1024 && this.head * 2 > this.items.length) { this.items = this.items.slice(this.head); this.head = 0; }
        return item;
      }
      if (this.closed) return undefined;
      await new Promise<void>((resolve) => {
        const done = () => { signal.removeEventListener('abort', done); this.wake = undefined; resolve(); };
        this.wake = done;
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }
}
