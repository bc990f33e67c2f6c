// The Node reflector behind KubeSubnetManager.watchLeases: list → 'snapshot', then watch from the
// list's resourceVersion; a cleanly closed watch resumes from the last version seen (bookmarks
// keep it fresh); 410 Gone relists; any other error is logged and retried with backoff, resuming
// from the last version (which the server may answer with 410 → relist). It never gives up
// until the signal aborts.
//
// Why not client-node's ListWatch/makeInformer: in 1.4.0 it stops for good on any non-410 error
// (the caller must restart it), offers no hook after a relist (we must emit a snapshot there),
// and sends neither allowWatchBookmarks nor timeoutSeconds, so a silently dead connection is
// never noticed. This is client-go's reflector shape on client-node's own Watch transport.
import type { Logger } from '../log.js';
import { Backoff, type Clock } from '../retry.js';
import { errorMessage } from '../errors.js';
import type { LeaseEvent } from './types.js';
import type { AnnotationKeys } from './kube-annotations.js';
import { NodeLeaseTracker } from './kube-tracker.js';
import type { V1Node } from '@kubernetes/client-node';
import { kubeErrorMessage, type KubeNodeClient, type WatchEventType, type WatchOutcome, type WatchParams } from './kube-client.js';
import type { NodeLike } from './kube-node.js';

export type WatcherState = 'pending' | 'alive' | 'lost';

export interface NodeWatchOptions extends Pick<ReflectorOptions<NodeLike, V1Node>, 'clock' | 'log' | 'backoff' | 'watchTimeoutSeconds' | 'random' | 'onState'> {
  client: KubeNodeClient;
  keys: AnnotationKeys;
}

/** A FIFO of events with one async consumer. */
class Channel<T> {
  private readonly buf: T[] = [];
  private wake: (() => void) | undefined;

  push(items: readonly T[]): void {
    if (items.length === 0) return;
    this.buf.push(...items);
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  async *drain(signal: AbortSignal): AsyncGenerator<T> {
    const onAbort = () => { const w = this.wake; this.wake = undefined; w?.(); };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        while (this.buf.length > 0 && !signal.aborted) yield this.buf.shift()!;
        if (signal.aborted) return;
        await new Promise<void>((r) => { this.wake = r; });
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }
}

export function watchNodeLeases(o: NodeWatchOptions, signal: AbortSignal): AsyncIterable<LeaseEvent> {
  const ch = new Channel<LeaseEvent>();
  const ctl = new AbortController();
  const stop = () => ctl.abort(signal.reason);
  if (signal.aborted) stop();
  else signal.addEventListener('abort', stop, { once: true });
  return {
    [Symbol.asyncIterator]() {
      void reflect(o, ch, ctl.signal).catch((err: unknown) => o.log.error({ err: errorMessage(err) }, 'kube node watch stopped unexpectedly'));
      const it = ch.drain(ctl.signal);
      // Ending the iteration early (break) stops the reflector too.
      return {
        next: () => it.next(),
        return: async (v?: unknown) => { stop(); signal.removeEventListener('abort', stop); await it.return(undefined); return { done: true as const, value: v as undefined }; },
      };
    },
  };
}

async function reflect(o: NodeWatchOptions, ch: Channel<LeaseEvent>, signal: AbortSignal): Promise<void> {
  const tracker = new NodeLeaseTracker(o.keys);
  await reflectCollection<NodeLike, V1Node>({
    ...o, what: 'node', server: o.client.server,
    list: (s) => o.client.listNodes(s),
    watch: (p, onEvent, s, onConnect) => o.client.watchNodes(p, onEvent, s, onConnect),
    relisted: (items) => {
      ch.push(tracker.relist(items));
      o.log.debug({ nodes: items.length, leases: tracker.size }, 'kube: listed nodes');
    },
    event: (type, node) => {
      if (type === 'ADDED' || type === 'MODIFIED') ch.push(tracker.upsert(node));
      else if (type === 'DELETED') ch.push(tracker.remove(node));
    },
  }, signal);
}

/** What a reflector over one collection needs: how to list and watch it, and where results go. */
export interface ReflectorOptions<L, W> {
  /** Resource name for logs, singular ("node", "pod"). */
  what: string;
  /** The API server, for logs. */
  server: string;
  list: (signal: AbortSignal) => Promise<{ items: L[]; resourceVersion: string }>;
  watch: (p: WatchParams, onEvent: (type: WatchEventType, obj: W) => void, signal: AbortSignal, onConnect: () => void) => Promise<WatchOutcome>;
  /** A full list replaced everything known (first list, or after 410 Gone). */
  relisted: (items: L[]) => void;
  /** One watch event (BOOKMARKs are not passed on). */
  event: (type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: W) => void;
  clock: Clock;
  log: Logger;
  backoff?: Backoff;
  /** Server-side watch timeout; randomised in [t, 2t) so agents do not reconnect in step. */
  watchTimeoutSeconds?: number;
  random?: () => number;
  /** Lifecycle: 'alive' after a list or a watch connects, 'lost' (with the error) on failure. */
  onState?: (s: WatcherState, detail?: string) => void;
}

/**
 * client-go's reflector loop for one collection: list, then watch from the list's
 * resourceVersion; resume after a clean close, relist after 410 Gone, back off on errors. Returns
 * only when the signal aborts.
 */
export async function reflectCollection<L, W extends { metadata?: { resourceVersion?: string } }>(o: ReflectorOptions<L, W>, signal: AbortSignal): Promise<void> {
  const backoff = o.backoff ?? new Backoff({ initialMs: 250, maxMs: 10_000 });
  const random = o.random ?? Math.random;
  const base = o.watchTimeoutSeconds ?? 300;
  let rv = '';
  let expiredStreak = 0;
  let state: WatcherState | undefined;
  const setState = (s: WatcherState, detail?: string) => { if (s !== state || detail !== undefined) { state = s; o.onState?.(s, detail); } };
  setState('pending');
  while (!signal.aborted) {
    try {
      if (rv === '') {
        const list = await o.list(signal);
        o.relisted(list.items);
        rv = list.resourceVersion;
        o.log.debug({ what: o.what, items: list.items.length, resourceVersion: rv }, `kube: listed ${o.what} objects`);
        setState('alive');
      }
      const started = o.clock.now();
      const outcome: WatchOutcome = await o.watch(
        { resourceVersion: rv, timeoutSeconds: Math.round(base * (1 + random())) },
        (type, obj) => {
          const next = obj.metadata?.resourceVersion;
          if (type !== 'BOOKMARK') o.event(type, obj);
          if (next) rv = next;
        },
        signal,
        () => setState('alive'),
      );
      if (outcome.kind === 'aborted') return;
      if (outcome.kind === 'expired') {
        o.log.info({ resourceVersion: rv }, `kube: ${o.what} watch expired (410 Gone); relisting`);
        rv = '';
        // A server that keeps answering 410 right after a list must not make us spin.
        if (++expiredStreak > 1) await o.clock.sleep(backoff.next(), signal);
        continue;
      }
      expiredStreak = 0;
      if (outcome.kind === 'closed') {
        const quick = o.clock.now() - started < 1000 && outcome.events === 0;
        if (quick) await o.clock.sleep(backoff.next(), signal);
        else backoff.reset();
        continue;
      }
      if (outcome.events > 0) backoff.reset();
      throw outcome.error;
    } catch (err) {
      if (signal.aborted) return;
      setState('lost', kubeErrorMessage(err));
      const delay = backoff.next();
      o.log.warn({ err: kubeErrorMessage(err), retryInMs: delay, server: o.server }, rv === '' ? `kube: listing ${o.what} objects failed; retrying` : `kube: ${o.what} watch failed; restarting`);
      try { await o.clock.sleep(delay, signal); } catch { return; }
    }
  }
}
