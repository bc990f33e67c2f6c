// Turns Node list/watch traffic into LeaseEvents, pure. Nodes change for many reasons that do
// not concern the overlay (kubelet heartbeats, labels, taints), so an 'added' is emitted only
// when the decoded lease differs from the one last emitted for that node; a node that stops
// being ours (annotation removed, or undecodable) yields 'removed' for the lease peers hold, and
// one that was reported 'invalid' and is deleted, or stops being ours, yields 'deleted', so the
// agent forgets it.
import type { Lease, LeaseEvent, Undecodable } from './types.js';
import type { AnnotationKeys } from './kube-annotations.js';
import { nodeLease, type NodeLike } from './kube-node.js';
import { sameLeaseData } from '../lease/diff.js';

export class NodeLeaseTracker {
  private readonly keys: AnnotationKeys;
  private known = new Map<string, Lease>();
  private invalid = new Map<string, string>();

  constructor(keys: AnnotationKeys) {
    this.keys = keys;
  }

  /** The full set after a (re)list: one 'snapshot', the undecodable nodes included. */
  relist(nodes: readonly NodeLike[]): LeaseEvent[] {
    this.known = new Map();
    this.invalid = new Map();
    const bad: Undecodable[] = [];
    for (const n of nodes) {
      const name = n.metadata?.name ?? '';
      const d = nodeLease(n, this.keys);
      if (d.kind === 'lease') this.known.set(name, d.lease);
      else if (d.kind === 'invalid') {
        this.invalid.set(name, d.reason);
        bad.push({ key: name, reason: d.reason });
      }
    }
    return [{ type: 'snapshot', leases: [...this.known.values()], invalid: bad }];
  }

  /** ADDED or MODIFIED. */
  upsert(node: NodeLike): LeaseEvent[] {
    const name = node.metadata?.name ?? '';
    const d = nodeLease(node, this.keys);
    const prev = this.known.get(name);
    const out: LeaseEvent[] = [];
    if (d.kind === 'lease') {
      this.invalid.delete(name);
      this.known.set(name, d.lease);
      if (!prev || !sameLeaseData(prev, d.lease)) out.push({ type: 'added', lease: d.lease });
      return out;
    }
    if (prev) {
      this.known.delete(name);
      out.push({ type: 'removed', lease: prev });
    }
    if (d.kind === 'invalid') {
      if (this.invalid.get(name) !== d.reason) out.push({ type: 'invalid', key: name, reason: d.reason });
      this.invalid.set(name, d.reason);
    } else if (this.invalid.delete(name)) {
      out.push({ type: 'deleted', key: name });
    }
    return out;
  }

  /** DELETED. */
  remove(node: NodeLike): LeaseEvent[] {
    const name = node.metadata?.name ?? '';
    const wasInvalid = this.invalid.delete(name);
    const prev = this.known.get(name);
    if (!prev) return wasInvalid ? [{ type: 'deleted', key: name }] : [];
    this.known.delete(name);
    return [{ type: 'removed', lease: prev }];
  }

  get size(): number { return this.known.size; }
}
