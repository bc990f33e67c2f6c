// kube mode (a real kube-apiserver; skips where the upstream binaries cannot be had, see
// test/harness/suites/describe.ts): the lease-safety assertions against Node objects, the Node
// created first winning a conflict; see test/harness/suites/lease-safety.ts.
import { leaseSafetySuite } from '../harness/suites/lease-safety.js';

leaseSafetySuite('kube');
