// kube-mode API outages; the assertions are the etcd mode's, see test/harness/suites/outage.ts.
//
// kube-fake (the fake API server): every request answered with an injected 503 while the server
// stays up, and every open watch dropped mid-stream. This half stays on the fake because a real
// kube-apiserver cannot be made to do that on demand.
//
// kube (a real kube-apiserver, test/harness/store-kube-real.ts): the apiserver process is stopped
// for the outage (connections refused; etcd keeps the state) and started again with the same
// flags, so the agents' watches resume against a real watch cache. Skips, with the reason,
// where the upstream binaries cannot be had (not root, no Go).
import { outageSuite } from '../harness/suites/outage.js';

outageSuite('kube-fake');
outageSuite('kube');
