// kube mode (fake API server, the test plays kube-controller-manager): the same assertions as
// the etcd mode; see test/harness/suites/restart.ts.
import { restartSuite } from '../harness/suites/restart.js';

restartSuite('kube');
