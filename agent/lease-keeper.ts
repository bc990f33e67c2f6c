// Keeps our lease: acquire (retrying with backoff and a clear reason while the store is down or
// the network is full), renew ahead of expiry, and re-acquire when the lease vanishes — keeping
// the datapath untouched. Re-acquiring a different subnet means another node now holds ours:
// pods already addressed from it would break, so that is fatal (the agent exits non-zero).
import type { Lease, LeaseAttrs, SubnetManager } from '../lib/subnet/types.js';
import type { Logger } from '../lib/log.js';
import { Backoff, retry, type Clock } from '../lib/retry.js';
import { TwillError, errorMessage, isTwillError } from '../lib/errors.js';

export interface LeaseKeeperDeps {
  sm: SubnetManager;
  attrs: LeaseAttrs;
  clock: Clock;
  logger: Logger;
  renewMarginMs: number;
  /** Reports why we have no lease yet (undefined once held). */
  onProblem: (reason: string | undefined) => void;
  onLease: (lease: Lease) => void;
}

export class LeaseKeeper {
  private current: Lease | undefined;
  private readonly d: LeaseKeeperDeps;
  constructor(deps: LeaseKeeperDeps) { this.d = deps; }

  get lease(): Lease | undefined { return this.current; }

  async acquire(previousSubnet: string | undefined, signal: AbortSignal): Promise<Lease> {
    const lease = await retry(() => this.d.sm.acquireLease(this.d.attrs, { previousSubnet, signal }), {
      clock: this.d.clock, signal, backoff: new Backoff({ initialMs: 500, maxMs: 30_000 }),
      onError: (err, attempt, delay) => {
        if (isTwillError(err, 'ABORTED')) return false;
        const text = errorMessage(err);
        const exhausted = isTwillError(err, 'SUBNETS_EXHAUSTED');
        const msg = exhausted ? (text.startsWith('out of subnets') ? text : `out of subnets: ${text}`) : `lease: ${text}`;
        this.d.onProblem(msg);
        this.d.logger.error({ attempt, retryInMs: delay, code: (err as TwillError).code }, msg);
      },
    });
    this.d.onProblem(undefined);
    this.set(lease);
    this.d.logger.info({ subnet: lease.subnet, expiration: lease.expiration && new Date(lease.expiration).toISOString() }, 'lease acquired');
    return lease;
  }

  /** Our lease vanished from the store: take it back, or fail if someone else has it. */
  async reacquire(signal: AbortSignal): Promise<Lease> {
    const old = this.current;
    this.d.logger.warn({ subnet: old?.subnet }, 'our lease vanished from the store; re-acquiring (datapath untouched)');
    const lease = await this.acquire(old?.subnet, signal);
    if (old && lease.subnet !== old.subnet) {
      // Do not sit on a subnet we are about to abandon: give it back before exiting.
      await this.d.sm.releaseLease?.(lease, signal).catch((err) => this.d.logger.warn({ err: errorMessage(err) }, 'could not release the new lease'));
      throw new TwillError('LEASE_LOST', `our subnet ${old.subnet} is now held by another node (we were given ${lease.subnet}); exiting so pods are not left on a subnet we do not own`);
    }
    return lease;
  }

  /** Renews ahead of expiry until aborted. Rejects with LEASE_LOST when the subnet is gone for good. */
  async runRenewals(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff({ initialMs: 1000, maxMs: 60_000 });
    while (!signal.aborted) {
      const l = this.current;
      // null: a reservation, nothing to renew (our own lease's expiration is never undefined:
      // acquire and renew know it, and observed() keeps it).
      if (!l || l.expiration == null) { await this.d.clock.sleep(60_000, signal); continue; }
      const wait = Math.max(0, l.expiration - this.d.renewMarginMs - this.d.clock.now());
      await this.d.clock.sleep(wait, signal);
      try {
        this.set(await this.d.sm.renewLease(this.current ?? l, signal));
        backoff.reset();
        this.d.logger.info({ subnet: l.subnet, expiration: new Date(this.current!.expiration ?? 0).toISOString() }, 'lease renewed');
      } catch (err) {
        if (signal.aborted) return;
        if (isTwillError(err, 'LEASE_LOST')) { await this.reacquire(signal); continue; }
        const delay = backoff.next();
        this.d.logger.warn({ err: errorMessage(err), retryInMs: delay }, 'lease renewal failed; retrying');
        await this.d.clock.sleep(delay, signal);
      }
    }
  }

  /** A watch event about our own key (renewed elsewhere, expiration moved). */
  observed(lease: Lease): void {
    if (!this.current || lease.subnet !== this.current.subnet || lease.expiration === undefined) return;
    this.set({ ...this.current, expiration: lease.expiration });
  }

  private set(lease: Lease): void {
    this.current = lease;
    this.d.onLease(lease);
  }
}
