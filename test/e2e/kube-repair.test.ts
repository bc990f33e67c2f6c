// kube mode (fake API server, the test plays kube-controller-manager): the same assertions as
// the etcd mode; see test/harness/suites/repair.ts.
import { repairSuite } from '../harness/suites/repair.js';

repairSuite('kube');
