// How a shared suite is gated by the store it runs against. etcd and kube-fake need root only
// (describeRoot). kube runs the pinned upstream kube-apiserver and etcd (store-kube-real.ts), so
// it skips exactly when the real-cluster suite does, with the same reason (not root; no Go to
// build upstream); with CI=true a missing Go toolchain throws, failing the file instead.
import { describe } from 'vitest';
import { clusterSkipReason } from '../../cluster/prepare.js';
import { describeRoot } from '../../util/root.js';
import type { StoreMode } from '../store.js';

export function describeStore(mode: StoreMode, name: string, fn: () => void): void {
  if (mode !== 'kube') { describeRoot(name, fn); return; }
  const skip = clusterSkipReason();
  if (skip === undefined) { describe(name, fn); return; }
  console.warn(`${name}: skipped: ${skip}`);
  describe.skip(`${name} [skipped: ${skip}]`, fn);
}
