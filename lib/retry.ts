// Injectable time (docs/design.md, rule 9): logic never calls setTimeout directly; it asks a Clock.
// Tests pass a manual clock; production uses systemClock.
import { abortError } from './errors.js';

export interface Clock {
  now(): number;                                       // ms since epoch
  sleep(ms: number, signal?: AbortSignal): Promise<void>; // rejects with ABORTED on abort
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep(ms, signal) {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(abortError(signal));
      const onAbort = () => { clearTimeout(t); reject(abortError(signal!)); };
      const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  },
};

export interface BackoffOptions {
  initialMs?: number;   // first delay (default 200)
  maxMs?: number;       // cap (default 10_000)
  factor?: number;      // growth (default 2)
  jitter?: number;      // 0..1, fraction of the delay randomised (default 0.2)
  random?: () => number;
}

/** Exponential backoff with jitter. next() returns the delay to wait; reset() after success. */
export class Backoff {
  private attempt = 0;
  private readonly o: Required<BackoffOptions>;
  constructor(opts: BackoffOptions = {}) {
    this.o = { initialMs: 200, maxMs: 10_000, factor: 2, jitter: 0.2, random: Math.random, ...opts };
  }
  next(): number {
    const base = Math.min(this.o.maxMs, this.o.initialMs * this.o.factor ** this.attempt);
    this.attempt++;
    const j = base * this.o.jitter;
    return Math.max(0, Math.round(base - j + this.o.random() * 2 * j));
  }
  reset(): void { this.attempt = 0; }
  get attempts(): number { return this.attempt; }
}

/**
 * Runs `fn` until it resolves, sleeping with backoff between failures. `onError` sees each
 * failure (log it); returning false from it stops retrying and rethrows.
 */
export async function retry<T>(
  fn: () => Promise<T>,
  opts: { clock?: Clock; backoff?: Backoff; signal?: AbortSignal; onError?: (err: unknown, attempt: number, delayMs: number) => boolean | void },
): Promise<T> {
  const clock = opts.clock ?? systemClock;
  const backoff = opts.backoff ?? new Backoff();
  for (;;) {
    if (opts.signal?.aborted) throw abortError(opts.signal);
    try {
      const v = await fn();
      backoff.reset();
      return v;
    } catch (err) {
      if (opts.signal?.aborted) throw abortError(opts.signal);
      const delay = backoff.next();
      if (opts.onError?.(err, backoff.attempts, delay) === false) throw err;
      await clock.sleep(delay, opts.signal);
    }
  }
}

/**
 * A child signal that aborts with `parent` or after `ms`, and a `done()` that detaches it again.
 * (AbortSignal.any on Node 20 leaves a listener on a long-lived parent per call.)
 */
export function deadline(parent: AbortSignal, ms: number): { signal: AbortSignal; done(): void } {
  const ctl = new AbortController();
  const onAbort = () => ctl.abort(parent.reason);
  parent.addEventListener('abort', onAbort, { once: true });
  const t = setTimeout(() => ctl.abort(new Error(`timed out after ${ms} ms`)), ms);
  return { signal: ctl.signal, done: () => { clearTimeout(t); parent.removeEventListener('abort', onAbort); } };
}
