// Shared pieces of the commands: the pools from the subnet file, the store lock, the
// test-only fault hooks and an undo stack for ADD's rollback.
import { pluginFs } from '../runtime/fs.js';
import { mark } from '../runtime/trace.js';
import { CniError, CNI_ERR } from '../skel/errors.js';
import { DiskStore } from '../ipam/store.js';
import { withFileLock } from '../ipam/lock.js';
import type { Pool } from '../ipam/allocate.js';
import type { NodeSubnets } from '../subnet-env.js';
import type { PluginConf } from '../config.js';
import type { PluginDeps, Step } from '../deps.js';

export function poolsOf(subnets: NodeSubnets): Pool[] {
  return subnets.families.map((f, i) => ({ family: f.family, subnet: f.subnet, rangeId: String(i) }));
}

export function storeOf(conf: PluginConf): DiskStore {
  return new DiskStore(conf.dataDir, conf.name);
}

/** Runs `fn` holding the store lock (creating the store directory first). */
export async function locked<T>(store: DiskStore, deps: PluginDeps, fn: () => T | Promise<T>): Promise<T> {
  try {
    store.ensureDir();
  } catch (err) {
    throw new CniError(CNI_ERR.io, `IPAM store ${store.dir}: cannot create: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, '', err);
  }
  if (deps.pauseAt === PAUSE_IN_LOCK) store.onTempWritten = () => pause(PAUSE_IN_LOCK);
  return withFileLock(store.lockPath, { flock: deps.flock, blocking: deps.lockBlocking }, fn);
}

/**
 * Test-only TWILL_CNI_PAUSE_AT point inside the store lock: a record's temp file written, not
 * yet linked into place (every Step fires after the lock is released).
 */
export const PAUSE_IN_LOCK = 'ipam-temp';

/** Test-only hooks (TWILL_CNI_FAIL_AT / TWILL_CNI_PAUSE_AT): fail or freeze after `step`. */
export function hook(deps: PluginDeps, step: Step): void {
  mark(step);
  if (deps.pauseAt === step) pause(step);
  if (deps.failAt === step) throw new CniError(CNI_ERR.internal, `injected failure after step "${step}" (TWILL_CNI_FAIL_AT, test only)`);
}

/** Prints the marker a test waits for, then freezes until killed (120 s at most). */
function pause(step: string): void {
  pluginFs().write(2, `TWILL_PAUSED ${step}\n`);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120_000);
}

/** LIFO undo actions; run() tries every one and keeps going past failures. */
export class Undo {
  private readonly steps: (() => unknown)[] = [];
  push(fn: () => unknown): void {
    this.steps.push(fn);
  }
  async run(): Promise<string[]> {
    const errors: string[] = [];
    while (this.steps.length) {
      const fn = this.steps.pop()!;
      try {
        await fn();
      } catch (err) {
        errors.push(err instanceof Error ? err.message : String(err));
      }
    }
    return errors;
  }
}
