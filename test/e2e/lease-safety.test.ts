// etcd mode: lease safety (issue 14) — a duplicate VTEP MAC never cuts off the incumbent (the key
// created first wins, on every node and across restarts), claims of a node's own MAC, public IP
// or subnet are never programmed there, invalid leases leave every count when deleted, and
// readiness names only the real cause; see test/harness/suites/lease-safety.ts.
import { leaseSafetySuite } from '../harness/suites/lease-safety.js';

leaseSafetySuite('etcd');
