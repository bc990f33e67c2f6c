// kube mode on a real kube-apiserver (the pinned upstream build, test/harness/store-kube-real.ts;
// agents use the ServiceAccount token of deploy/rbac.yaml, the test plays the kubelet and
// kube-controller-manager): the same assertions as the etcd mode; see test/harness/suites/repair.ts.
// Skips, with the reason, where the upstream binaries cannot be had (not root, no Go).
import { repairSuite } from '../harness/suites/repair.js';

repairSuite('kube');
