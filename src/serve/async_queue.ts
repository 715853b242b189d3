// async_queue.ts: an unbounded single-consumer queue that an engine pushes a request's output into and
// the request's reader drains as an async iterable, so the engine runs at its own pace, never waiting
// for a slow reader (and one reader's pace never holds up another request). It owns only the
// hand-off: push, close, fail. It does not bound memory (output per request is bounded by maxTokens).

export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiter: ((r: IteratorResult<T>) => void) | undefined;
  private failWaiter: ((err: unknown) => void) | undefined;
  private closed = false;
  private error: { readonly err: unknown } | undefined;

  push(item: T): void {
    if (this.closed) throw new Error("AsyncQueue: push after close");
    const w = this.waiter;
    if (w) {
      this.waiter = this.failWaiter = undefined;
      w({ value: item, done: false });
    } else this.items.push(item);
  }

  /** No more items: the reader finishes after the ones queued. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const w = this.waiter;
    this.waiter = this.failWaiter = undefined;
    w?.({ value: undefined, done: true });
  }

  /** The reader gets `err` after the items queued so far. */
  fail(err: unknown): void {
    if (this.closed) return;
    this.closed = true;
    this.error = { err };
    const f = this.failWaiter;
    this.waiter = this.failWaiter = undefined;
    f?.(err);
  }

  private next(): Promise<IteratorResult<T>> {
    if (this.items.length > 0) return Promise.resolve({ value: this.items.shift()!, done: false });
    if (this.error) return Promise.reject(this.error.err);
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    if (this.waiter) return Promise.reject(new Error("AsyncQueue: a second reader (it has one consumer)"));
    return new Promise((resolve, reject) => {
      this.waiter = resolve;
      this.failWaiter = reject;
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return { next: () => this.next() };
  }
}
